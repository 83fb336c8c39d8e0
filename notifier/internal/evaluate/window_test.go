package evaluate_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/notifier/internal/evaluate"
)

// Item 2 of issue 13: windows of events timestamped far ahead of now are
// pruned too, so a burst of them does not hold memory until their time
// comes; windows inside the future horizon (accepted clock skew) are kept.
func TestPruneForgetsFarFutureWindows(t *testing.T) {
	t.Parallel()
	e := engine(t)
	now := time.UnixMilli(base)
	for i := range 100 {
		ts := now.AddDate(1+i, 0, 0).UnixMilli()
		e.Evaluate(event(fmt.Sprintf("f%d", i), "payment.failed", "u1", ts, `{"region":"eu"}`), nil)
	}
	near := now.Add(evaluate.FutureHorizon - 2*time.Minute).UnixMilli()
	e.Evaluate(event("near", "payment.failed", "u1", near, `{"region":"eu"}`), nil)
	require.Equal(t, 202, e.Windows())
	require.Equal(t, 200, e.Prune(now), "windows beyond the horizon are forgotten")
	require.Equal(t, 2, e.Windows(), "windows inside the horizon are kept")
	require.Zero(t, e.Prune(now))
}
