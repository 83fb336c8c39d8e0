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

// TestRecentBuildWritesWhatApplyWould: a cache built in memory and written
// at once leaves the keys and values Apply's script leaves for the same
// events — events one call each (Apply's own one-by-one semantics), and in
// batches when no id has a second copy — through trimming, redelivered
// events, second copies of ids and timestamps out of order.
func TestRecentBuildWritesWhatApplyWould(t *testing.T) {
	t.Parallel()
	rdb := testsupport.StartRedis(t).Client(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 9))
	now := time.Now()
	events := randomEvents(rng, 3000, now.UnixMilli()-time.Hour.Milliseconds())
	noCopies := events[:0:0]
	seen := map[string]bool{}
	for _, ev := range events {
		if !seen[ev.ID] {
			noCopies = append(noCopies, ev)
			seen[ev.ID] = true
		}
	}
	for _, tc := range []struct {
		name  string
		batch int
		max   int
		evs   int // how many of the events, redelivering the first 100 at the end
		dupes bool
	}{
		{"one by one, trimmed", 1, 1000, 3000, true},
		{"one by one, not trimmed", 1, 5000, 3000, true},
		{"batches, trimmed", 500, 1000, 3000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := events
			if !tc.dupes {
				src = noCopies
			}
			src = append(slices.Clone(src[:min(tc.evs, len(src))]), src[:100]...)
			appliedPrefix := "{" + testsupport.UniqueName(t) + ":a}:"
			applied := readmodel.NewRecent(rdb, readmodel.RecentOptions{Prefix: appliedPrefix, MaxEvents: tc.max})
			for i := 0; i < len(src); i += tc.batch {
				_, err := applied.Apply(ctx, src[i:min(i+tc.batch, len(src))], now)
				require.NoError(t, err)
			}
			want := storedKeys(t, rdb, readmodel.RecentPrefixFor(appliedPrefix))
			require.NotEmpty(t, want["all"])
			if tc.max < tc.evs {
				require.NotEmpty(t, want["tb"], "the filter of the names that lost events")
			} else {
				require.NotContains(t, want, "tb", "nothing lost")
			}
			// Written at the end, or flushed after every Add from the
			// first event or from half-way (events written, then trimmed
			// and removed again, and later copies of their ids written).
			for i, from := range []uint64{0, 1, uint64(len(src) / 2)} {
				builtPrefix := "{" + testsupport.UniqueName(t) + ":b" + strconv.Itoa(i) + "}:"
				b := readmodel.NewRecent(rdb, readmodel.RecentOptions{Prefix: builtPrefix, MaxEvents: tc.max}).NewBuild()
				if from > 0 {
					b.WriteFrom(from)
				}
				for i := 0; i < len(src); i += 700 {
					require.NoError(t, b.Add(src[i:min(i+700, len(src))]))
					if from > 0 {
						require.NoError(t, b.Flush(ctx))
					}
				}
				require.NoError(t, b.Write(ctx))
				require.Equal(t, want, storedKeys(t, rdb, readmodel.RecentPrefixFor(builtPrefix)), "flushed from %d", from)
			}
		})
	}
}

// storedKeys is every key under prefix (cut off) with its content, but
// for the meta hash's epoch, which Write leaves to the switch (a meta hash
// holding only the epoch is left out), and, when it expires, its expiry
// (Unix s; a seen bitmap's only that it expires: its EXPIRE counts from
// the second it ran).
func storedKeys(t *testing.T, rdb *redis.Client, prefix string) map[string]any {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		name := strings.TrimPrefix(key, prefix)
		switch typ := rdb.Type(ctx, key).Val(); typ {
		case "zset":
			out[name] = rdb.ZRangeWithScores(ctx, key, 0, -1).Val()
		case "hash":
			h := rdb.HGetAll(ctx, key).Val()
			delete(h, "epoch")
			if len(h) > 0 {
				out[name] = h
			}
		case "string":
			out[name] = rdb.Get(ctx, key).Val()
		default:
			t.Fatalf("%s: unexpected type %s", key, typ)
		}
		switch ttl := rdb.ExpireTime(ctx, key).Val(); {
		case strings.HasPrefix(name, "seen:"):
			out[name+" expires"] = ttl > 0
		case ttl > 0:
			out[name+" expires"] = ttl
		}
	}
	require.NoError(t, iter.Err())
	return out
}

// TestRecentBuildFlushRemovesBeforeWriting: a flush that removes an event
// written before and trimmed since, and writes a later copy of its id,
// leaves the copy (the removal goes first), as Apply does.
func TestRecentBuildFlushRemovesBeforeWriting(t *testing.T) {
	t.Parallel()
	rdb := testsupport.StartRedis(t).Client(t)
	ctx := context.Background()
	now := time.Now()
	ev := func(seq uint64, id string, ts int64) schemas.Event {
		return schemas.Event{ID: id, EventType: "a", UserID: "u1", Timestamp: now.UnixMilli() + ts, ReceivedAt: now.UnixMilli(), Seq: seq}
	}
	first := []schemas.Event{ev(1, "x", 1)}
	then := []schemas.Event{ev(2, "y", 5), ev(3, "z", 6), ev(4, "x", 7)} // trims x, then its copy is cached
	appliedPrefix := "{" + testsupport.UniqueName(t) + ":a}:"
	applied := readmodel.NewRecent(rdb, readmodel.RecentOptions{Prefix: appliedPrefix, MaxEvents: 2})
	for _, e := range append(slices.Clone(first), then...) {
		_, err := applied.Apply(ctx, []schemas.Event{e}, now)
		require.NoError(t, err)
	}
	builtPrefix := "{" + testsupport.UniqueName(t) + ":b}:"
	b := readmodel.NewRecent(rdb, readmodel.RecentOptions{Prefix: builtPrefix, MaxEvents: 2}).NewBuild()
	b.WriteFrom(1)
	require.NoError(t, b.Add(first))
	require.NoError(t, b.Flush(ctx))
	require.NoError(t, b.Add(then))
	require.NoError(t, b.Flush(ctx))
	require.NoError(t, b.Write(ctx))
	want := storedKeys(t, rdb, readmodel.RecentPrefixFor(appliedPrefix))
	require.Contains(t, want["ids"], "x")
	require.Equal(t, want, storedKeys(t, rdb, readmodel.RecentPrefixFor(builtPrefix)))
}
