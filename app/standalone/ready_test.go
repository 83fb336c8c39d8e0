package standalone_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone"
	"github.com/kilnhq/kiln/testsupport"
)

// Issue 13 item 7: with Redis unreachable the standalone's readiness says
// which role and which dependency, without dial addresses, and ingest's own
// readiness (/readyz/ingest) stays 200 while it keeps accepting events.
func TestReadinessPerRoleWithRedisDown(t *testing.T) {
	t.Parallel()
	redisProxy := testsupport.StartProxy(t, testsupport.StartRedis(t).Addr())
	mongo := testsupport.StartMongo(t)
	port := strconv.Itoa(testsupport.FreePort(t))
	adminPort := strconv.Itoa(testsupport.FreePort(t))
	cfg, err := standalone.LoadConfig(map[string]string{
		"KILN_DATA_DIR": t.TempDir(), "PORT": port, "ADMIN_PORT": adminPort,
		"GRPC_ADDR": "127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t)),
		"NATS_PORT": strconv.Itoa(testsupport.FreePort(t)), "MONGO_URI": mongo.URI(),
		"REDIS_URL": "redis://" + redisProxy.Addr(), "KILN_SERVICES": "ingest,projector,gateway",
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- standalone.Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	base, admin := "http://127.0.0.1:"+port, "http://127.0.0.1:"+adminPort
	require.Eventually(t, func() bool { s, _ := get(base + "/readyz"); return s == 200 }, 3*time.Minute, 50*time.Millisecond)
	status, body := get(base + "/readyz/ingest")
	require.Equal(t, 200, status, body)
	require.Contains(t, body, `"ingest":{"status":"ready"}`)

	redisProxy.Cut()
	var ready map[string]any
	require.Eventually(t, func() bool {
		s, b := get(base + "/readyz")
		if s != 503 {
			return false
		}
		ready = nil
		return json.Unmarshal([]byte(b), &ready) == nil
	}, 3*time.Minute, 50*time.Millisecond)
	roles := ready["roles"].(map[string]any)
	require.Equal(t, map[string]any{"status": "ready"}, roles["ingest"])
	require.Equal(t, map[string]any{"status": "unavailable", "dependencies": []any{"redis"}}, roles["projector"])
	require.Equal(t, map[string]any{"status": "unavailable", "dependencies": []any{"redis"}}, roles["gateway"])
	require.Equal(t, "not ready: gateway (redis), projector (redis)", ready["detail"])

	for _, url := range []string{base + "/readyz", admin + "/readyz", base + "/readyz/projector", admin + "/readyz/gateway"} {
		s, b := get(url)
		require.Equal(t, 503, s, url)
		require.NotContains(t, b, "127.0.0.1", "%s names no address: %s", url, b)
		require.NotContains(t, b, redisProxy.Addr())
	}
	for _, url := range []string{base + "/readyz/ingest", admin + "/readyz/ingest"} {
		s, b := get(url)
		require.Equal(t, 200, s, "%s: %s", url, b)
	}
	s, _ := get(base + "/readyz/nope")
	require.Equal(t, 404, s)

	resp, err := http.Post(base+"/events", "application/json",
		strings.NewReader(`{"eventType":"ready","userId":"u","timestamp":1700000000}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 202, resp.StatusCode, "ingest keeps accepting")

	redisProxy.Restore()
	require.Eventually(t, func() bool { s, _ := get(base + "/readyz"); return s == 200 }, 3*time.Minute, 50*time.Millisecond)
}

// Issue 13 item 7: the admin listener (metrics, health; no auth) binds
// loopback unless ADMIN_HOST says otherwise (the container image does).
func TestAdminBindsLoopbackByDefault(t *testing.T) {
	t.Parallel()
	cfg, err := standalone.LoadConfig(map[string]string{"KILN_DATA_DIR": t.TempDir()})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", cfg.AdminHost)
	require.Equal(t, "127.0.0.1:9101", cfg.Ingest.AdminAddr)
}
