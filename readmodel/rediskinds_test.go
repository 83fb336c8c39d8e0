package readmodel_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// redisKinds are the three ways Redis is run, each a real server group.
var redisKinds = []struct {
	name  string
	start func(t *testing.T) redis.UniversalClient
}{
	{"single", func(t *testing.T) redis.UniversalClient { return testsupport.StartRedis(t).Client(t) }},
	{"cluster", func(t *testing.T) redis.UniversalClient { return testsupport.StartRedisCluster(t, false).Client(t) }},
	{"sentinel", func(t *testing.T) redis.UniversalClient { return testsupport.StartRedisSentinel(t).Client(t) }},
}

// flushAll empties Redis: every master of a Cluster.
func flushAll(ctx context.Context, rdb redis.UniversalClient) error {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.FlushAll(ctx).Err() })
	}
	return rdb.FlushAll(ctx).Err()
}

// countKeys counts the keys matching pattern on every master.
func countKeys(t *testing.T, rdb redis.UniversalClient, pattern string) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	one := func(ctx context.Context, c redis.UniversalClient) error {
		keys, err := c.Keys(ctx, pattern).Result()
		n += len(keys)
		return err
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		var mu = make(chan struct{}, 1)
		require.NoError(t, cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu <- struct{}{}
			defer func() { <-mu }()
			return one(ctx, c)
		}))
		return n
	}
	require.NoError(t, one(ctx, rdb))
	return n
}

// TestCountersAndCacheOnEveryKind runs the counters' and the cache's
// whole life — exactly-once counting, checkpoints, a rebuild's lease and
// marks, a flush detected, a trimmed cache answering queries, a second
// generation switched to and the first dropped — on one server, a
// Cluster and a Sentinel group.
func TestCountersAndCacheOnEveryKind(t *testing.T) {
	t.Parallel()
	for _, kind := range redisKinds {
		t.Run(kind.name, func(t *testing.T) {
			ctx := context.Background()
			rdb := kind.start(t)
			now := time.Now()
			// Timestamps over 100 s: many second and minute buckets, so
			// the script's keys would span slots without the hash tag.
			evs := make([]schemas.Event, 300)
			for i := range evs {
				evs[i] = schemas.Event{
					ID: fmt.Sprintf("k%03d", i), EventType: []string{"a", "b", "c", "d"}[i%4], UserID: fmt.Sprintf("u%d", i%17),
					Timestamp: now.Add(-100*time.Second).UnixMilli() + int64(i)*333, ReceivedAt: now.UnixMilli(), Seq: uint64(i + 1),
				}
			}

			c := readmodel.FollowCounters(rdb, readmodel.CountersOptions{MarkRebuildWhenFresh: true})
			res, err := c.Apply(ctx, evs[:200], now)
			require.NoError(t, err)
			require.Equal(t, readmodel.CountResult{Applied: 200, Fresh: true}, res)
			res, err = c.Apply(ctx, evs, now)
			require.NoError(t, err)
			require.Equal(t, 100, res.Applied, "each event counted once")
			r, pending, err := c.PendingRebuild(ctx)
			require.NoError(t, err)
			require.True(t, pending, "fresh counters are marked for a rebuild")
			ok, err := c.AcquireLease(ctx, "me", time.Minute)
			require.NoError(t, err)
			require.True(t, ok)
			require.NoError(t, c.MarkRebuild(ctx, 300))
			require.NoError(t, c.SetRebuildCheckpoint(ctx, r, 300))
			done, err := c.EndRebuild(ctx, "me", r)
			require.NoError(t, err)
			require.True(t, done)
			wrote, err := c.SetLiveCheckpoint(ctx, 300)
			require.NoError(t, err)
			require.True(t, wrote)
			m, err := c.Snapshot(ctx, now)
			require.NoError(t, err)
			require.EqualValues(t, 300, m.Total)
			require.EqualValues(t, 300, m.AsOfSeq)
			require.Equal(t, map[string]int64{"a": 75, "b": 75, "c": 75, "d": 75}, m.Totals)
			var series int64
			for _, p := range m.Series {
				series += p.Total
			}
			require.EqualValues(t, 300, series)

			rc := readmodel.FollowRecent(rdb, readmodel.RecentOptions{MaxEvents: 50})
			for i := 0; i < len(evs); i += 40 {
				_, err := rc.Apply(ctx, evs[i:min(i+40, len(evs))], now)
				require.NoError(t, err)
			}
			epoch, _, err := rc.Start(ctx, now)
			require.NoError(t, err)
			ok, err = rc.MarkComplete(ctx, epoch)
			require.NoError(t, err)
			require.True(t, ok)
			require.NoError(t, rc.SetPositions(ctx, 300, 300))
			st, err := rc.State(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 50, st.Count, "trimmed to its bound")
			// The newest 50 are evs[250:]: every query shape answers from them.
			for _, q := range []readmodel.Query{
				{Limit: 10}, {Limit: 5, Types: []string{"a"}}, {Limit: 10, Types: []string{"a", "c"}},
				{Limit: 2, UserID: "u3"}, {Limit: 1, UserID: "u3", Types: []string{"b", "c", "d"}},
			} {
				page, ok, reason, err := rc.Find(ctx, q)
				require.NoError(t, err)
				require.True(t, ok, "%+v: %s", q, reason)
				require.NotEqual(t, "[]", string(page.Body), "%+v", q)
			}
			_, ok, reason, err := rc.Find(ctx, readmodel.Query{Limit: 100, Types: []string{"a"}, From: evs[0].Timestamp})
			require.NoError(t, err)
			require.False(t, ok, "a range below the floor is MongoDB's")
			require.Equal(t, "outside", reason)

			// A replay's generation 1, switched to; generation 0 dropped.
			c1 := readmodel.NewCounters(rdb, readmodel.CountersOptions{Prefix: readmodel.PrefixFor(1)})
			_, err = c1.Apply(ctx, evs[:10], now)
			require.NoError(t, err)
			b := readmodel.NewRecent(rdb, readmodel.RecentOptions{Prefix: readmodel.PrefixFor(1), MaxEvents: 50}).NewBuild()
			require.NoError(t, b.Add(evs[:10]))
			require.NoError(t, b.Write(ctx))
			require.NoError(t, readmodel.SwitchCounters(ctx, rdb, 1))
			total, err := c.Total(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 10, total, "the live counters follow the pointer")
			require.NoError(t, readmodel.DropCounters(ctx, rdb, 0))
			require.Zero(t, countKeys(t, rdb, readmodel.PrefixFor(0)+"*"))
			require.Zero(t, countKeys(t, rdb, readmodel.RecentPrefixFor(readmodel.PrefixFor(0))+"*"))
			require.NotZero(t, countKeys(t, rdb, readmodel.RecentPrefixFor(readmodel.PrefixFor(1))+"*"))

			require.NoError(t, flushAll(ctx, rdb))
			res, err = c.Apply(ctx, evs[:1], now)
			require.NoError(t, err)
			require.True(t, res.Fresh, "a flushed Redis is detected")
		})
	}
}

// TestClusterRunsTheScriptsItRefusedBefore: the counters script as it was
// (keys built from a prefix in ARGV, none in KEYS) is refused by Redis
// Cluster; the one passing every key in KEYS under one hash tag runs.
func TestClusterRunsTheScriptsItRefusedBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := testsupport.StartRedisCluster(t, false).Client(t)
	old, err := os.ReadFile("testdata/counters_per_event.lua")
	require.NoError(t, err)
	now := time.Now()
	args := []any{"kiln:", now.Unix(), 180, 86400, 604800, "1", 86400, "0"}
	var evs []schemas.Event
	for i := range 20 {
		ts := now.Add(-time.Duration(i) * 7 * time.Second).UnixMilli()
		args = append(args, i+1, "a", ts)
		evs = append(evs, schemas.Event{ID: fmt.Sprint(i), EventType: "a", Timestamp: ts, Seq: uint64(i + 1)})
	}
	err = redis.NewScript(string(old)).Run(ctx, rdb, []string{"kiln:meta"}, args...).Err()
	require.Error(t, err, "the old layout's script")
	t.Logf("the old layout on Cluster: %v", err)

	c := readmodel.NewCounters(rdb, readmodel.CountersOptions{})
	res, err := c.Apply(ctx, evs, now)
	require.NoError(t, err)
	require.Equal(t, 20, res.Applied)
	rc := readmodel.NewRecent(rdb, readmodel.RecentOptions{MaxEvents: 5})
	_, err = rc.Apply(ctx, evs, now)
	require.NoError(t, err)
}
