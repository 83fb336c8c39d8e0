package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	"github.com/kilnhq/kiln/webhooks/signature"
)

func TestWebhooksCommands(t *testing.T) {
	t.Parallel()
	in := standalonetest.Start(t, t.TempDir(), "KILN_ADMIN_KEYS", "adm-1", "WEBHOOKS_ALLOW_NETWORKS", "127.0.0.0/8")
	var mu sync.Mutex
	var got []string
	var secrets []signature.Secret
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if _, err := signature.Verify(secrets, signature.Headers{ID: r.Header.Get("webhook-id"),
			Timestamp: r.Header.Get("webhook-timestamp"), Signature: r.Header.Get("webhook-signature")}, body, time.Now(), time.Minute); err == nil {
			got = append(got, string(body))
		}
	}))
	t.Cleanup(rc.Close)
	admin := []string{"--url", in.Base, "--admin-key", "adm-1"}

	_, err := kiln(t.Context(), in, "webhooks", "list", "--url", in.Base)
	require.ErrorContains(t, err, "401", "the admin API needs the key")

	out, err := kiln(t.Context(), in, append([]string{"webhooks", "create", "--endpoint-url", rc.URL, "--filter", "order.*"}, admin...)...)
	require.NoError(t, err, out)
	var ep struct{ ID, Secret string }
	require.NoError(t, json.Unmarshal([]byte(out[strings.Index(out, "{"):strings.LastIndex(out, "}")+1]), &ep), out)
	require.Contains(t, out, "not shown again")
	s, err := signature.ParseSecret(ep.Secret)
	require.NoError(t, err)
	mu.Lock()
	secrets = append(secrets, s)
	mu.Unlock()

	out, err = kiln(t.Context(), in, append([]string{"webhooks", "list"}, admin...)...)
	require.NoError(t, err, out)
	require.Contains(t, out, ep.ID)
	require.Contains(t, out, "order.*")
	require.NotContains(t, out, ep.Secret)

	out, err = kiln(t.Context(), in, append([]string{"webhooks", "test", ep.ID}, admin...)...)
	require.NoError(t, err, out)
	require.Contains(t, out, `"ok": true`)
	mu.Lock()
	require.Len(t, got, 1, "the receiver verified the signed test event")
	require.Contains(t, got[0], "kiln.webhook.test")
	mu.Unlock()

	out, err = kiln(t.Context(), in, append([]string{"webhooks", "disable", ep.ID}, admin...)...)
	require.NoError(t, err, out)
	require.Contains(t, out, `"disabled": true`)
	_, err = kiln(t.Context(), in, append([]string{"webhooks", "redrive"}, admin...)...)
	require.ErrorContains(t, err, "give --delivery")
	out, err = kiln(t.Context(), in, append([]string{"webhooks", "delete", ep.ID}, admin...)...)
	require.NoError(t, err, out)
	_, err = kiln(t.Context(), in, append([]string{"webhooks", "get", ep.ID}, admin...)...)
	require.ErrorContains(t, err, "404")
}
