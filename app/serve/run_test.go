package serve_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/serve"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// TestRolesServeTheirListenersAndStop runs roles through kiln serve's one
// runner: each answers on its admin listener (and its public one, if it
// has one), and returns nil once its context ends, its listeners closed.
func TestRolesServeTheirListenersAndStop(t *testing.T) {
	t.Parallel()
	mongo, rdb, ns := testsupport.StartMongo(t), testsupport.StartRedis(t), testsupport.StartNATS(t)
	_, err := schemas.EnsureStream(context.Background(), ns.JetStream(t), schemas.StreamOptions{})
	require.NoError(t, err)
	addr := func() string { return fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t)) }
	for _, tc := range []struct {
		role, publicVar, adminVar string
		// publicGET is a route of the role's public listener and its status
		publicGET  string
		wantStatus int
	}{
		{"gateway", "GATEWAY_ADDR", "GATEWAY_ADMIN_ADDR", "/events", http.StatusUnauthorized},
		{"ingest", "INGEST_ADDR", "INGEST_ADMIN_ADDR", "/events", http.StatusMethodNotAllowed},
		{"projector", "", "PROJECTOR_ADMIN_ADDR", "", 0},
		{"webhooks", "WEBHOOKS_ADDR", "WEBHOOKS_ADMIN_ADDR", "/webhook-endpoints", http.StatusUnauthorized},
	} {
		t.Run(tc.role, func(t *testing.T) {
			t.Parallel()
			public, admin := addr(), addr()
			env := map[string]string{
				tc.adminVar: admin, "NATS_URL": ns.URL(), "MONGO_URI": mongo.URI(),
				"MONGO_DATABASE": testsupport.UniqueName(t), "REDIS_URL": rdb.URL(),
				"KILN_READ_KEYS": "reader", "KILN_INGEST_KEYS": "writer", "KILN_ADMIN_KEYS": "admin",
			}
			if tc.publicVar != "" {
				env[tc.publicVar] = public
			}
			role, err := serve.Find(tc.role)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			done := make(chan error, 1)
			go func() { done <- role.Run(ctx, env, testsupport.Logger(t)) }()

			require.Eventually(t, func() bool { return status(t, "GET", "http://"+admin+"/readyz") == http.StatusOK },
				2*time.Minute, 20*time.Millisecond, "admin /readyz")
			require.Equal(t, http.StatusOK, status(t, "GET", "http://"+admin+"/metrics"))
			if tc.publicVar != "" {
				require.Equal(t, http.StatusOK, status(t, "GET", "http://"+public+"/healthz"))
				require.Equal(t, tc.wantStatus, status(t, "GET", "http://"+public+tc.publicGET))
			}

			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(2 * time.Minute):
				t.Fatal("the role did not return after its context was canceled")
			}
			require.Zero(t, status(t, "GET", "http://"+admin+"/healthz"), "the admin listener is closed")
			if tc.publicVar != "" {
				require.Zero(t, status(t, "GET", "http://"+public+"/healthz"), "the public listener is closed")
			}
		})
	}
}

// status is the status of a request, 0 when it cannot connect.
func status(t *testing.T, method, url string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
