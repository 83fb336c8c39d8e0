package readmodel_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// TestCountersBuildWritesWhatApplyWould: counters built in memory and
// written at once leave the keys, values and expiries Apply's script
// leaves for the same events — in batches, with redelivered sequences,
// timestamps out of order, some in the second buckets' retention, some in
// the minute buckets', some past both, some ahead of now (and beyond the accepted skew), and sequences
// in two seen bitmaps.
func TestCountersBuildWritesWhatApplyWould(t *testing.T) {
	t.Parallel()
	rdb := testsupport.StartRedis(t).Client(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 5))
	now := time.Now()
	var events []schemas.Event
	for i := range 5000 {
		// No bucket expires within a minute and a half of now: Redis
		// expires keys by the clock, and one doing so between the two
		// writes and the reads tells nothing of the build (a second
		// bucket of an event two minutes old did, at times).
		age := []time.Duration{time.Second, 20 * time.Second, 10 * time.Minute, 23 * time.Hour, 30 * time.Hour, -time.Hour, -30 * time.Hour}[rng.IntN(7)]
		events = append(events, schemas.Event{
			ID: "c" + strconv.Itoa(i), EventType: []string{"a", "b", "order.created"}[rng.IntN(3)],
			Timestamp: now.Add(-age).UnixMilli() - rng.Int64N(60_000),
			Seq:       uint64(1<<20 - 2500 + i), // across two bitmaps
		})
	}
	events = append(events, events[:300]...) // redelivered
	opts := func(prefix string) readmodel.CountersOptions {
		return readmodel.CountersOptions{Prefix: prefix, MinuteRetention: 24 * time.Hour}
	}
	appliedPrefix := "{" + testsupport.UniqueName(t) + ":a}:"
	applied := readmodel.NewCounters(rdb, opts(appliedPrefix))
	for i := 0; i < len(events); i += 700 {
		_, err := applied.Apply(ctx, events[i:min(i+700, len(events))], now)
		require.NoError(t, err)
	}
	builtPrefix := "{" + testsupport.UniqueName(t) + ":b}:"
	b := readmodel.NewCounters(rdb, opts(builtPrefix)).NewBuild()
	for i := 0; i < len(events); i += 700 {
		b.Add(events[i:min(i+700, len(events))], now)
	}
	require.NoError(t, b.Write(ctx, now))
	require.NoError(t, b.Write(ctx, now), "a retried write")
	want := storedKeys(t, rdb, appliedPrefix)
	require.Len(t, want["all"], 4, "three types and the total")
	require.Contains(t, want, "seen:1")
	require.Equal(t, want, storedKeys(t, rdb, builtPrefix))

	// Counted once more through the script, as the events after a
	// replay's switch are: the built ones' seen bits hold.
	for _, c := range []*readmodel.Counters{applied, readmodel.NewCounters(rdb, opts(builtPrefix))} {
		res, err := c.Apply(ctx, events[:10], now)
		require.NoError(t, err)
		require.Zero(t, res.Applied)
		require.False(t, res.Fresh)
	}
	require.NoError(t, readmodel.NewCounters(rdb, opts(builtPrefix)).SetCheckpoint(ctx, 7))
	cp, err := readmodel.NewCounters(rdb, opts(builtPrefix)).Checkpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(7), cp, "the build records its master, so the checkpoint is taken")
}
