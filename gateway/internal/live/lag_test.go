package live

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/gateway/internal/metrics"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestLagGaugesRiseWhileBehindAndFallWhenCaughtUp holds the fan-out (its
// lock, as a fan-out stuck on its clients would) while events are stored,
// then lets it go.
func TestLagGaugesRiseWhileBehindAndFallWhenCaughtUp(t *testing.T) {
	t.Parallel()
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	ctx := context.Background()
	_, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	require.NoError(t, err)
	publish := func(i int) {
		msg := nats.NewMsg(schemas.Subject("lag.test"))
		msg.Data = fmt.Appendf(nil, `{"id":"e%d","eventType":"lag.test","userId":"u","timestamp":1700000000000,"receivedAt":1700000000000}`, i)
		_, err := js.PublishMsg(ctx, msg)
		require.NoError(t, err)
	}
	publish(0)
	reg := prometheus.NewRegistry()
	m, err := metrics.NewSSE(reg)
	require.NoError(t, err)
	h := New(Options{JetStream: js, Metrics: m, LagInterval: 20 * time.Millisecond, Log: testsupport.Logger(t)})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	lag := func() (float64, float64) {
		return gaugeValue(t, reg, "kiln_gateway_sse_lag_messages"), gaugeValue(t, reg, "kiln_gateway_sse_lag_seconds")
	}
	require.Eventually(t, func() bool {
		n, s := lag()
		return h.fanned.Load() == 1 && n == 0 && s == 0
	}, 2*time.Minute, 20*time.Millisecond, "the hub never caught up with the first event")

	h.mu.Lock()
	var once sync.Once
	unlock := func() { once.Do(h.mu.Unlock) }
	t.Cleanup(unlock) // before the hub stops, even when the test failed
	for i := 1; i <= 5; i++ {
		publish(i)
	}
	require.Eventually(t, func() bool {
		n, s := lag()
		return n == 5 && s > 0
	}, 2*time.Minute, 20*time.Millisecond, "the lag gauges never showed the 5 events behind")
	unlock()
	require.Eventually(t, func() bool {
		n, s := lag()
		return h.fanned.Load() == 6 && n == 0 && s == 0
	}, 2*time.Minute, 20*time.Millisecond, "the lag gauges never fell back to 0")
}
