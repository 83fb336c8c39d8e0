package standalone_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	"github.com/kilnhq/kiln/webhooks/signature"
)

// A webhook in, an event through the pipeline, a webhook out: all on the
// standalone's one port.
func TestStandaloneWebhooksInAndOut(t *testing.T) {
	t.Parallel()
	in := standalonetest.Start(t, t.TempDir(), "WEBHOOK_SECRET", "s3cret-value", "WEBHOOKS_ALLOW_NETWORKS", "127.0.0.0/8")

	var mu sync.Mutex
	var got []string
	var secret signature.Secret
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		_, err := signature.Verify([]signature.Secret{secret}, signature.Headers{ID: r.Header.Get("webhook-id"),
			Timestamp: r.Header.Get("webhook-timestamp"), Signature: r.Header.Get("webhook-signature")}, body, time.Now(), 5*time.Minute)
		if err == nil {
			got = append(got, string(body))
		}
	}))
	t.Cleanup(rc.Close)

	resp, err := http.Post(in.Base+"/webhook-endpoints", "application/json",
		strings.NewReader(`{"url":"`+rc.URL+`","filters":["order.*"]}`))
	require.NoError(t, err)
	var ep struct{ ID, Secret string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ep))
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	mu.Lock()
	secret, err = signature.ParseSecret(ep.Secret)
	mu.Unlock()
	require.NoError(t, err)

	body := `{"type":"order.created","data":{"id":"o-9","status":"created","amount":10,"currency":"EUR","customerEmail":"bo@example.com","createdAt":"2026-12-01T20:00:00Z"}}`
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	req, err := http.NewRequest(http.MethodPost, in.Base+"/webhooks/demo", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Timestamp", ts)
	req.Header.Set("X-Signature", signature.LegacySign("s3cret-value", "demo", ts, []byte(body)))
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1
	}, 3*time.Minute, 50*time.Millisecond, "the endpoint gets the event")
	mu.Lock()
	require.Contains(t, got[0], `"customerEmail":"bo@example.com"`)
	require.Contains(t, got[0], `"type":"order.created"`)
	mu.Unlock()
	require.Eventually(t, func() bool {
		var page []struct {
			UserID string `json:"userId"`
		}
		r, err := http.Get(in.Base + "/events?type=order.created")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		if json.NewDecoder(r.Body).Decode(&page) != nil {
			return false
		}
		return len(page) == 1 && page[0].UserID == "bo@example.com"
	}, 60*time.Second, 50*time.Millisecond, "and the history has it")
}
