package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

func TestRunServesBothListenersAndStops(t *testing.T) {
	t.Parallel()
	mongo, rdb, ns := testsupport.StartMongo(t), testsupport.StartRedis(t), testsupport.StartNATS(t)
	_, err := schemas.EnsureStream(context.Background(), ns.JetStream(t), schemas.StreamOptions{})
	require.NoError(t, err)
	public := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
	cfg, err := gateway.LoadConfig(map[string]string{
		"GATEWAY_ADDR": public, "GATEWAY_ADMIN_ADDR": admin,
		"MONGO_URI": mongo.URI(), "MONGO_DATABASE": testsupport.UniqueName(t),
		"REDIS_URL": rdb.URL(), "KILN_READ_KEYS": "reader", "NATS_URL": ns.URL(),
	})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gateway.Run(ctx, cfg, testsupport.Logger(t)) }()
	t.Cleanup(cancel)

	for _, base := range []string{"http://" + public, "http://" + admin} {
		require.Eventually(t, func() bool {
			return getStatus(base+"/readyz") == 200
		}, 15*time.Second, 20*time.Millisecond, base)
	}
	r := get(t, "http://"+public+"/events", "Authorization", "Bearer reader")
	require.Equal(t, 200, r.status, "%s", r.body)
	require.Equal(t, "[]", string(r.body))
	requireProblem(t, get(t, "http://"+public+"/events"), 401)
	live := openStream(t, "http://"+public+"/stream?access_token=reader")
	live.requireConnected(t)
	seqs := publish(t, ns.JetStream(t), event{Type: "page_view", User: "u1"})
	require.Equal(t, seqs, live.eventsUntil(t, seqs[0]), "Run runs the live stream")

	m := get(t, "http://"+admin+"/metrics")
	require.Equal(t, 200, m.status)
	for _, want := range []string{
		`kiln_gateway_requests_total{method="GET",route="/events",status="200"} 1`,
		`kiln_gateway_requests_total{method="GET",route="/events",status="401"} 1`,
		"go_goroutines",
	} {
		require.True(t, strings.Contains(string(m.body), want), "admin /metrics lacks %q", want)
	}

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after its context was canceled")
	}
	f, _ := live.next(t)
	require.Equal(t, "error", f.event, "the open stream was ended: %+v", f)
	require.Equal(t, 0, getStatus("http://"+public+"/healthz"), "the public listener is closed")
}

// getStatus is the status of GET url, 0 when it cannot connect.
func getStatus(url string) int {
	r, err := httpClient().Get(url)
	if err != nil {
		return 0
	}
	_ = r.Body.Close()
	return r.StatusCode
}
