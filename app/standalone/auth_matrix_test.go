package standalone_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	"github.com/kilnhq/kiln/httpserver/tokens"
	"github.com/kilnhq/kiln/testsupport"
)

// The keys of the authorization matrix, one of each kind.
const (
	ingestKey = "matrix-ingest-key"
	readKey   = "matrix-read-key"
	adminKey  = "matrix-admin-key"
	pubKey    = "matrix-publishable-key"
	pubOrigin = "https://shop.example.com"
	secret    = "matrix-token-secret-0123456789abcdef"
)

// route is one request of the matrix and the status each credential gets.
type route struct {
	listener string // "public" or "admin"
	method   string
	path     string
	body     string
	// want: no key, ingest key, read key, admin key, publishable key
	// (from its origin), subscriber token
	want [6]int
}

// TestAuthorizationMatrix sends every route of a standalone with
// KILN_INGEST_KEYS, KILN_READ_KEYS and KILN_ADMIN_KEYS set, with no key and
// with each kind of key, and checks the answer README's Authorization
// table documents. A key is sent as a bearer token; TestKeyCarriers checks
// the other places a key may be sent.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	adminPort := testsupport.FreePort(t)
	in := standalonetest.Start(t, t.TempDir(), "KILN_INGEST_KEYS", ingestKey, "KILN_READ_KEYS", readKey,
		"KILN_ADMIN_KEYS", adminKey, "ADMIN_PORT", strconv.Itoa(adminPort),
		"KILN_PUBLISHABLE_KEYS", pubKey+" types=page_view origins="+pubOrigin, "KILN_TOKEN_SECRETS", secret)
	keyring, err := tokens.NewKeyring(tokens.Config{Secrets: []string{secret}})
	require.NoError(t, err)
	token, err := keyring.Sign(tokens.Mint{Types: []string{"page_view"}, TTL: time.Hour}, time.Now())
	require.NoError(t, err)
	admin := "http://127.0.0.1:" + strconv.Itoa(adminPort)
	event := `{"eventType":"page_view","userId":"u1","timestamp":` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `}`
	const (
		ok, accepted, unauth, forbidden, notFound = 200, 202, 401, 403, 404
	)
	other := `{"eventType":"order.shipped","userId":"u1","timestamp":` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `}`
	routes := []route{
		{"public", "POST", "/events", event, [6]int{unauth, accepted, unauth, unauth, accepted, unauth}},
		{"public", "POST", "/events", other, [6]int{unauth, accepted, unauth, unauth, forbidden, unauth}},
		{"public", "GET", "/events", "", [6]int{unauth, unauth, ok, unauth, unauth, ok}},
		{"public", "GET", "/events/nope", "", [6]int{unauth, unauth, notFound, unauth, unauth, notFound}},
		{"public", "GET", "/metrics", "", [6]int{unauth, unauth, ok, unauth, unauth, forbidden}},
		{"public", "GET", "/alerts", "", [6]int{unauth, unauth, ok, unauth, unauth, forbidden}},
		{"public", "GET", "/orders", "", [6]int{unauth, unauth, ok, unauth, unauth, forbidden}},
		{"public", "GET", "/stream", "", [6]int{unauth, unauth, ok, unauth, unauth, ok}},
		{"public", "GET", "/webhook-endpoints", "", [6]int{unauth, unauth, unauth, ok, unauth, unauth}},
		{"public", "GET", "/webhook-deliveries/nope", "", [6]int{unauth, unauth, unauth, notFound, unauth, unauth}},
		{"public", "GET", "/openapi.json", "", [6]int{ok, ok, ok, ok, ok, ok}},
		{"public", "GET", "/docs", "", [6]int{ok, ok, ok, ok, ok, ok}},
		{"public", "GET", "/", "", [6]int{ok, ok, ok, ok, ok, ok}},
		{"public", "GET", "/healthz", "", [6]int{ok, ok, ok, ok, ok, ok}},
		{"public", "GET", "/readyz", "", [6]int{ok, ok, ok, ok, ok, ok}},
		{"admin", "GET", "/metrics", "", [6]int{ok, ok, ok, ok, ok, ok}},
		{"admin", "GET", "/healthz", "", [6]int{ok, ok, ok, ok, ok, ok}},
		{"admin", "GET", "/readyz", "", [6]int{ok, ok, ok, ok, ok, ok}},
	}
	client := &http.Client{Timeout: 30 * time.Second}
	var got strings.Builder
	for _, r := range routes {
		base := in.Base
		if r.listener == "admin" {
			base = admin
		}
		var row [6]int
		for i, key := range []string{"", ingestKey, readKey, adminKey, pubKey, token} {
			var body io.Reader
			if r.body != "" {
				body = strings.NewReader(r.body)
			}
			req, err := http.NewRequest(r.method, base+r.path, body)
			require.NoError(t, err)
			if r.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			if key == pubKey {
				req.Header.Set("Origin", pubOrigin) // browsers send it; without it a publishable key is 403
			}
			resp, err := client.Do(req)
			require.NoError(t, err, "%s %s", r.method, r.path)
			row[i] = resp.StatusCode
			_ = resp.Body.Close() // a stream ends here, after its headers
		}
		fmt.Fprintf(&got, "%-6s %-4s %-26s %v\n", r.listener, r.method, r.path, row)
		require.Equal(t, r.want, row, "%s %s %s: [no key, ingest, read, admin, publishable, token]", r.listener, r.method, r.path)
	}
	t.Logf("authorization matrix [no key, ingest key, read key, admin key, publishable key, token]:\n%s", got.String())

	// Where a key may be sent: Authorization: Bearer and X-API-Key
	// everywhere, ?access_token= on the read routes only (EventSource
	// cannot set headers); a wrong key is no key.
	for _, c := range []struct {
		method, path, body, header, value, query string
		want                                     int
	}{
		{"POST", "/events", event, "X-API-Key", ingestKey, "", accepted},
		{"POST", "/events", event, "", "", "access_token=" + ingestKey, unauth},
		{"POST", "/events", event, "Authorization", "Bearer wrong", "", unauth},
		{"POST", "/events", event, "Authorization", ingestKey, "", unauth}, // no "Bearer "
		{"GET", "/events", "", "X-API-Key", readKey, "", ok},
		{"GET", "/events", "", "", "", "access_token=" + readKey, ok},
		{"GET", "/stream", "", "", "", "access_token=" + readKey, ok},
		{"GET", "/events", "", "", "", "access_token=wrong", unauth},
		{"GET", "/webhook-endpoints", "", "X-API-Key", adminKey, "", ok},
		{"GET", "/webhook-endpoints", "", "", "", "access_token=" + adminKey, unauth},
	} {
		url := in.Base + c.path
		if c.query != "" {
			url += "?" + c.query
		}
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		req, err := http.NewRequest(c.method, url, body)
		require.NoError(t, err)
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.header != "" {
			req.Header.Set(c.header, c.value)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, c.want, resp.StatusCode, "%s %s %s=%q %s", c.method, c.path, c.header, c.value, c.query)
		if resp.StatusCode == unauth {
			require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
		}
	}
}
