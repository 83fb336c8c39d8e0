package notifiereval_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/loadtest/internal/notifiereval"
)

func TestParseAveragesTheRounds(t *testing.T) {
	t.Parallel()
	out := `goos: linux
pkg: github.com/kilnhq/kiln/notifier/internal/evaluate
BenchmarkEvaluate/rules=0-2         	  300000	      3000 ns/op	    300000 events/s	         0 decisions/event	     900 B/op	      20 allocs/op
BenchmarkEvaluate/rules=100-2       	  200000	      5000 ns/op	    200000 events/s	   0.01400 decisions/event	    1000 B/op	      22 allocs/op
BenchmarkEvaluate/rules=0-2         	  300000	      3000 ns/op	    340000 events/s	         0 decisions/event	     900 B/op	      20 allocs/op
BenchmarkEvaluate/rules=100-2       	  200000	      5000 ns/op	    220000 events/s	   0.01600 decisions/event	    1000 B/op	      22 allocs/op
PASS
`
	r, err := notifiereval.Parse(strings.NewReader(out))
	require.NoError(t, err)
	require.InDelta(t, 210000, r.EventsPerS, 1e-6)
	require.InDelta(t, 320000, r.BaselineEventsPerS, 1e-6)
	require.InDelta(t, 0.015, r.DecisionsPerEvent, 1e-9)
	require.InDelta(t, 210000.0/320000, r.Ratio(), 1e-9)

	_, err = notifiereval.Parse(strings.NewReader("PASS\n"))
	require.Error(t, err)
}

// TestRunMeasuresTheNotifiersBenchmark runs the real benchmark briefly (go
// test from the source tree, as bench.sh does).
func TestRunMeasuresTheNotifiersBenchmark(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the notifier's benchmark")
	}
	r, err := notifiereval.Run(t.Context(), 0)
	require.NoError(t, err)
	require.Positive(t, r.EventsPerS)
	require.Positive(t, r.BaselineEventsPerS)
	require.Greater(t, r.DecisionsPerEvent, 0.001, "some events decide alerts")
}
