package readmodel_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// spreadEvents returns n events, one per minute from base, with ids and
// sequences starting after first.
func spreadEvents(n int, first uint64, base int64) []schemas.Event {
	out := make([]schemas.Event, n)
	for i := range out {
		seq := first + uint64(i) + 1
		out[i] = schemas.Event{
			ID: fmt.Sprintf("s%06d", seq), EventType: "page_view", UserID: "u1",
			Timestamp: base + int64(i)*60_000, ReceivedAt: base, Seq: seq,
		}
	}
	return out
}

// Issue 12's small repro: 200 events in 200 different minutes, then 200
// more in the same minutes. On the embedded store one write touching more
// than ~100 existing documents held a SQLite connection per document and
// hung: the history stopped at 200.
func TestHistorySameMinutesTwiceDoesNotStall(t *testing.T) {
	t.Parallel()
	db := testsupport.StartMongo(t).Database(t)
	h := readmodel.NewHistory(db, readmodel.DefaultCollections())
	require.NoError(t, h.EnsureIndexes(context.Background()))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

	for round := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		res, err := h.Apply(ctx, spreadEvents(200, uint64(200*round), base))
		cancel()
		require.NoError(t, err, "round %d", round)
		require.Equal(t, 200, res.Inserted, "round %d", round)
	}
	n, err := h.Count(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 400, n)

	// Redelivery of both rounds at once is a no-op, and does not stall either.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := h.Apply(ctx, append(spreadEvents(200, 0, base), spreadEvents(200, 200, base)...))
	require.NoError(t, err)
	require.Equal(t, readmodel.ApplyResult{Duplicates: 400}, res)
}
