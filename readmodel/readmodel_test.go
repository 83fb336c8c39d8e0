package readmodel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

func events(n int, base int64) []schemas.Event {
	out := make([]schemas.Event, n)
	for i := range out {
		out[i] = schemas.Event{
			ID: fmt.Sprintf("e%03d", i), EventType: []string{"a", "b", "c"}[i%3], UserID: fmt.Sprintf("u%d", i%2),
			Timestamp: base + int64(i/2)*1000, ReceivedAt: base, Seq: uint64(i + 1),
			Metadata: json.RawMessage(fmt.Sprintf(`{"n":%d,"f":1.5,"s":"x","nested":{"k":[1,"two",null,true]}}`, i)),
		}
	}
	out[0].Metadata = json.RawMessage(`{"$weird.key":1}`)
	return out
}

func TestHistoryIsIdempotentAndPaginates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testsupport.StartMongo(t).Database(t)
	h := readmodel.NewHistory(db, readmodel.DefaultCollections())
	require.NoError(t, h.EnsureIndexes(ctx))

	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	evs := events(30, base)
	res, err := h.Apply(ctx, evs[:20])
	require.NoError(t, err)
	require.Equal(t, readmodel.ApplyResult{Inserted: 20}, res)
	res, err = h.Apply(ctx, evs) // redelivery overlapping new events
	require.NoError(t, err)
	require.Equal(t, readmodel.ApplyResult{Inserted: 10, Duplicates: 20}, res)
	late := evs[5]
	late.Seq = 99 // a late duplicate with a new sequence
	res, err = h.Apply(ctx, []schemas.Event{late})
	require.NoError(t, err)
	require.Equal(t, 1, res.Duplicates)

	got, err := h.Get(ctx, "e005")
	require.NoError(t, err)
	require.Equal(t, uint64(6), got.Seq, "the first copy wins")
	require.JSONEq(t, string(evs[5].Metadata), string(got.Metadata))
	weird, err := h.Get(ctx, "e000")
	require.NoError(t, err)
	require.JSONEq(t, `{"$weird.key":1}`, string(weird.Metadata))
	_, err = h.Get(ctx, "nope")
	require.ErrorIs(t, err, readmodel.ErrNotFound)

	// Page through types a and b, two at a time: every match once, newest first.
	q := readmodel.Query{Types: []string{"a", "b"}, From: base + 2000, To: base + 12000, Limit: 2}
	var seen []string
	var prev *schemas.Event
	for range 20 {
		page, next, err := h.Find(ctx, q)
		require.NoError(t, err)
		for _, ev := range page {
			if prev != nil {
				require.True(t, ev.Timestamp < prev.Timestamp || (ev.Timestamp == prev.Timestamp && ev.Seq < prev.Seq))
			}
			seen = append(seen, ev.ID)
			prev = &ev
		}
		if next == nil {
			break
		}
		c, err := readmodel.ParseCursor(next.String())
		require.NoError(t, err)
		q.After = &c
	}
	var want []string
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		if ev.EventType != "c" && ev.Timestamp >= base+2000 && ev.Timestamp <= base+12000 {
			want = append(want, ev.ID)
		}
	}
	require.ElementsMatch(t, want, seen)
	require.Len(t, seen, len(want))
}

func TestCountersExactlyOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := testsupport.StartRedis(t).Client(t)
	c := readmodel.NewCounters(rdb, readmodel.CountersOptions{})
	now := time.Now()
	evs := events(30, now.Add(-30*time.Second).UnixMilli())

	started, err := c.Started(ctx, now)
	require.NoError(t, err)
	require.False(t, started, "a new Redis has no counters")
	res, err := c.Apply(ctx, evs[:20], now)
	require.NoError(t, err)
	require.Equal(t, readmodel.CountResult{Applied: 20}, res)
	res, err = c.Apply(ctx, evs, now)
	require.NoError(t, err)
	require.Equal(t, 10, res.Applied)
	require.NoError(t, c.SetCheckpoint(ctx, 30))
	require.NoError(t, c.SetCheckpoint(ctx, 12))

	m, err := c.Snapshot(ctx, now)
	require.NoError(t, err)
	require.EqualValues(t, 30, m.TotalEventsLastMinute)
	require.Equal(t, []readmodel.TypeCount{{Type: "a", Count: 10}, {Type: "b", Count: 10}, {Type: "c", Count: 10}}, m.ByType)
	require.Equal(t, map[string]int64{"a": 10, "b": 10, "c": 10}, m.Totals)
	require.EqualValues(t, 30, m.Total)
	require.EqualValues(t, 30, m.AsOfSeq, "the checkpoint never moves back")
	var series int64
	for _, p := range m.Series {
		series += p.Total
	}
	require.EqualValues(t, 30, series)
	require.Len(t, m.Series, 60)

	require.NoError(t, rdb.FlushAll(ctx).Err())
	res, err = c.Apply(ctx, evs[:1], now)
	require.NoError(t, err)
	require.True(t, res.Fresh, "a flushed Redis is detected")
}

// FerretDB v1 panics on re-creating a compound index; EnsureIndexes must be
// safe to run at every start.
func TestEnsureIndexesTwice(t *testing.T) {
	t.Parallel()
	h := readmodel.NewHistory(testsupport.StartMongo(t).Database(t), readmodel.DefaultCollections())
	require.NoError(t, h.EnsureIndexes(context.Background()))
	require.NoError(t, h.EnsureIndexes(context.Background()))
}
