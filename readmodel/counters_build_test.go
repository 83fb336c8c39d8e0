package readmodel_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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
		age := []time.Duration{time.Second, 2 * time.Minute, 10 * time.Minute, 23 * time.Hour, 30 * time.Hour, -time.Hour, -30 * time.Hour}[rng.IntN(7)]
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
	want := counterKeys(t, rdb, appliedPrefix)
	require.Len(t, want["all"], 4, "three types and the total")
	require.Contains(t, want, "seen:1")
	require.Equal(t, want, counterKeys(t, rdb, builtPrefix))

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

// counterKeys is every key under prefix (cut off) with its content and
// expiry in seconds, but for the meta hash's epoch.
func counterKeys(t *testing.T, rdb *redis.Client, prefix string) map[string]any {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		name := strings.TrimPrefix(key, prefix)
		ttl := rdb.ExpireTime(ctx, key).Val()
		switch typ := rdb.Type(ctx, key).Val(); typ {
		case "hash":
			h := rdb.HGetAll(ctx, key).Val()
			delete(h, "epoch")
			out[name] = h
		case "string":
			out[name] = rdb.Get(ctx, key).Val()
		default:
			t.Fatalf("%s: unexpected type %s", key, typ)
		}
		switch {
		case strings.HasPrefix(name, "seen:"): // EXPIRE: from the second it ran
			out[name+" expires"] = ttl > 0
		case ttl > 0:
			out[name+" expires"] = ttl
		}
	}
	require.NoError(t, iter.Err())
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range out {
			if !yield(k) {
				return
			}
		}
	})
	t.Logf("%d keys: %s", len(keys), strings.Join(keys, " "))
	return out
}
