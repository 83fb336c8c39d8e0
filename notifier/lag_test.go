package notifier

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/notifier/internal/decide"
)

const lagRules = `rules:
  - name: every-signup
    match: {type: user.signup}
    channels: [log]
`

// gauge reads a gauge of the latest started service.
func (e *testEnv) gauge(t *testing.T, name string) float64 {
	t.Helper()
	families, err := e.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// TestLagGaugesRiseWhileBehindAndFallWhenCaughtUp holds the consumer in
// its first decision (the crash hook blocks, as a slow store would) while
// more events arrive, then lets it go.
func TestLagGaugesRiseWhileBehindAndFallWhenCaughtUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, lagRules, nil)
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	e.start(t, func(point, _ string) bool {
		if point == decide.CrashDecided {
			select {
			case held <- struct{}{}:
				<-release // only the first decision waits
			default:
			}
		}
		return false
	})
	var once sync.Once
	let := func() { once.Do(func() { close(release) }) }
	t.Cleanup(let) // before the service stops, even when the test failed
	now := time.Now().UnixMilli()
	e.publish(t, event("lag-0", "user.signup", "u", now, ""))
	<-held
	for i := 1; i <= 5; i++ {
		e.publish(t, event(fmt.Sprintf("lag-%d", i), "user.signup", "u", now, ""))
	}
	require.Eventually(t, func() bool {
		return e.gauge(t, "kiln_notifier_lag_messages") >= 6
	}, 2*time.Minute, 50*time.Millisecond, "lag_messages never showed the 6 events behind")
	require.Eventually(t, func() bool {
		return e.gauge(t, "kiln_notifier_lag_seconds") > 0
	}, 2*time.Minute, 50*time.Millisecond, "lag_seconds never rose")
	let()
	e.settle(t)
	require.Eventually(t, func() bool {
		return e.gauge(t, "kiln_notifier_lag_messages") == 0 && e.gauge(t, "kiln_notifier_lag_seconds") == 0
	}, 2*time.Minute, 50*time.Millisecond, "the lag gauges never fell back to 0")
}
