package evalbench

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRunPrintsOneJSONLine(t *testing.T) {
	t.Parallel()
	w, err := newWorkload(Rules, 1, 4096) // a small corpus: generating it is slow under -race
	require.NoError(t, err)
	r, err := measure(w, 400*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, "notifier_eval", r.Bench)
	require.Equal(t, Rules, r.Rules)
	require.Positive(t, r.EventsPerS)
	require.Positive(t, r.BaselineEventsPerS)
	require.InDelta(t, r.EventsPerS/r.BaselineEventsPerS, r.Ratio, 1e-9)
	require.Greater(t, r.DecisionsPerEvent, 0.001, "some events decide alerts")
	require.Less(t, r.DecisionsPerEvent, 0.05, "alerts stay rare")
	var line map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.JSON()), &line))
	for _, k := range []string{"bench", "events_per_s", "baseline_events_per_s", "ratio", "rules", "value", "unit", "baseline"} {
		require.Contains(t, line, k)
	}
}
