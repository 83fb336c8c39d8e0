package projector

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
)

// publishSpread appends n events whose timestamps are spread over span,
// the shape of issue 12's burst (many events, many minutes).
func (e *testEnv) publishSpread(t testing.TB, n int, span time.Duration) {
	t.Helper()
	start := time.Now().Add(-span).UnixMilli()
	step := span.Milliseconds() / int64(n)
	e.publishStamped(t, n, func(i int) (int64, int64) { return start + int64(i)*step, start })
}

// Issue 12's burst: thousands of events over hours of timestamps, taken in
// batches of 500, twice over the same minutes. The history checkpoint must
// reach the stream's last sequence.
func TestHistoryBurstOverManyMinutesReachesTheLastSequence(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.cfg.BatchSize = 500
	e.publishSpread(t, 3000, 6*time.Hour)
	e.publishSpread(t, 3000, 6*time.Hour)
	e.start(t, nil)

	ledger := readmodel.NewLedger(e.db)
	last := uint64(e.total())
	require.Eventually(t, func() bool {
		cp, err := ledger.Checkpoint(context.Background(), History)
		return err == nil && cp == last
	}, 3*time.Minute, 100*time.Millisecond, "history checkpoint never reached %d", last)
	n, err := readmodel.NewHistory(e.db, readmodel.DefaultCollections()).Count(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, last, n)
}
