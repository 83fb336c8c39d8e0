package projector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// startCounted runs a projector on e.redis and returns its registry (the
// failover_restored_total series) and its stop.
func (e *testEnv) startCounted(t *testing.T, noCheck bool) (*prometheus.Registry, func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	svc, err := New(context.Background(), e.cfg, Deps{
		JetStream: e.js, Mongo: e.db, Redis: e.redis, Metrics: reg, Log: testsupport.Logger(t),
	})
	require.NoError(t, err)
	svc.noFailoverCheck = noCheck
	return reg, testsupport.Run(t, context.Background(), svc.Run)
}

// restored reads how many events the projector restored after failovers.
func restored(t *testing.T, reg *prometheus.Registry, projection string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "kiln_projector_failover_restored_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "projection" && l.GetValue() == projection {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// requireRedisExact waits until the counters and the cache hold every
// event published, then requires them equal to the stream's events:
// counters in all, per type and in the per-minute series; the cache (its
// bound is above the events sent) holding each event once, per type too,
// complete, verified and answering. MongoDB is not waited for: these tests
// are about Redis, and the history is slow on a loaded machine.
func (e *testEnv) requireRedisExact(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	c := readmodel.NewCounters(e.redis, readmodel.CountersOptions{})
	rc := readmodel.NewRecent(e.redis, readmodel.RecentOptions{})
	total := int64(e.total())
	bound := e.cfg.RecentMaxEvents
	if bound == 0 {
		bound = readmodel.DefaultRecentMaxEvents
	}
	require.LessOrEqual(t, total, int64(bound), "the test sent more events than the cache holds")
	var mu sync.Mutex
	var seen string
	ok := assert.Eventually(t, func() bool {
		n, err := c.Total(ctx)
		st, err2 := rc.State(ctx)
		_, answers, reason, err3 := rc.Find(ctx, readmodel.Query{Limit: 10})
		mu.Lock()
		seen = fmt.Sprintf("counters %d (%v), cache %+v (%v), answers %v %s (%v)", n, err, st, err2, answers, reason, err3)
		mu.Unlock()
		return err == nil && err2 == nil && err3 == nil && n == total && st.Complete && st.Count == total && answers
	}, 5*time.Minute, 50*time.Millisecond)
	mu.Lock()
	last := seen
	mu.Unlock()
	require.True(t, ok, "redis never held the %d events; last seen: %s", total, last)
	want := map[string]int64{}
	for typ, n := range e.sent {
		want[typ] = int64(n)
	}
	requireCountsByType(t, c, want)
	p := readmodel.RecentPrefixFor(readmodel.PrefixFor(0))
	ids, err := e.redis.HLen(ctx, p+"ids").Result()
	require.NoError(t, err)
	require.Equal(t, total, ids, "cached ids")
	for typ, n := range want {
		got, err := e.redis.ZCard(ctx, p+"t:"+typ).Result()
		require.NoError(t, err)
		require.Equal(t, n, got, "cached events of %s", typ)
	}
}

// waitCheckpoints waits until the counters' asOfSeq and the cache's
// checkpoint have reached seq.
func (e *testEnv) waitCheckpoints(t *testing.T, seq uint64) {
	t.Helper()
	ctx := context.Background()
	c := readmodel.NewCounters(e.redis, readmodel.CountersOptions{})
	rc := readmodel.NewRecent(e.redis, readmodel.RecentOptions{})
	require.Eventually(t, func() bool {
		cp, err := c.Checkpoint(ctx)
		st, err2 := rc.State(ctx)
		return err == nil && err2 == nil && cp >= seq && st.Checkpoint >= seq
	}, 3*time.Minute, 20*time.Millisecond, "checkpoints never reached %d", seq)
}

// snapshot is every key of a Redis with its value (DUMP) and TTL.
type snapshot map[string]struct {
	dump string
	ttl  time.Duration
}

func takeSnapshot(t *testing.T, rdb redis.UniversalClient) snapshot {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	require.NoError(t, err)
	s := snapshot{}
	for _, k := range keys {
		d, err := rdb.Dump(ctx, k).Result()
		if errors.Is(err, redis.Nil) {
			continue // expired since KEYS (a per-second bucket)
		}
		require.NoError(t, err)
		ttl, err := rdb.PTTL(ctx, k).Result()
		require.NoError(t, err)
		if ttl < 0 {
			ttl = 0
		}
		s[k] = struct {
			dump string
			ttl  time.Duration
		}{d, ttl}
	}
	return s
}

// restore replaces everything in Redis with s, in one MULTI.
func (s snapshot) restore(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.FlushAll(ctx)
		for k, v := range s {
			p.Restore(ctx, k, v.ttl, v.dump)
		}
		return nil
	})
	require.NoError(t, err)
}

// TestLostAckedRedisWritesAreRestored is a failover whose replica lost
// acknowledged writes, made deterministic on one redis-server: the state
// of Redis at asOfSeq 1000 is put back (a replica that stopped there)
// under a new replication ID (as a promoted replica has) while the
// projector, which acked up to 2000, keeps running. The projector notices
// the other master, re-applies the stream above Redis' checkpoints, and
// the counters and the cache are exact again; the 1,000 events lost are
// counted in failover_restored_total.
func TestLostAckedRedisWritesAreRestored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.publish(t, 1000)
	reg, _ := e.startCounted(t, false)
	e.requireRedisExact(t)
	e.waitCheckpoints(t, 1000)
	before := takeSnapshot(t, e.redis)

	e.publish(t, 1000)
	e.requireRedisExact(t)
	e.waitCheckpoints(t, 2000)

	// The failover: a new master, holding what the old one held at 1000.
	testsupport.NewReplicationID(t, e.redis)
	before.restore(t, e.redis)
	m, err := readmodel.NewCounters(e.redis, readmodel.CountersOptions{}).Snapshot(context.Background(), time.Now())
	require.NoError(t, err)
	require.EqualValues(t, 1000, m.AsOfSeq, "the new master's asOfSeq")

	// The verification runs on the projector's check ticker. Nothing is
	// published until it has restored the 1,000 events: an event published
	// meanwhile may be applied by the verification before the live path
	// gets to it, and counted as restored (CI saw 1,100).
	require.Eventually(t, func() bool {
		return restored(t, reg, Counters) >= 1000 && restored(t, reg, Recent) >= 1000
	}, 3*time.Minute, 50*time.Millisecond, "the projector never restored what the new master lacked")
	require.EqualValues(t, 1000, restored(t, reg, Counters), "counted events the new master lacked")
	require.EqualValues(t, 1000, restored(t, reg, Recent), "cached events the new master lacked")
	e.requireRedisExact(t)

	e.publish(t, 500)
	e.requireRedisExact(t)
	e.waitCheckpoints(t, 2500)
}

// TestCountersAndCacheExactAfterRedisMasterKilled projects a stream
// continuously into Redis Sentinel and Redis Cluster (3 masters with a
// replica each), cuts the replica of the master holding the counters off
// it, kills that master with SIGKILL once 300 more events are acked,
// with batches in flight, lets Sentinel or the Cluster promote the
// replica, keeps projecting, and requires the counters (all and per type)
// and the cache to match the stream exactly, the acked events the
// replica lacked restored by the verification.
//
// Every step waits for the state it needs, as Redis reports it: a loaded
// machine (CI: 2 cores, load 20-50) makes each slow, and a healthy master
// that does not answer for the failure-detection time is failed over on
// its own (so that time is 10 s here, not the groups' 1-2 s).
func TestCountersAndCacheExactAfterRedisMasterKilled(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"sentinel", "cluster"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t)
			var cut func() testsupport.ReplicationCut
			var kill func(testsupport.ReplicationCut)
			switch kind {
			case "sentinel":
				rs := testsupport.StartRedisSentinel(t)
				// The sentinels promote only a replica whose link went down
				// less than ~10 down-afters before the master did: 90 s
				// between the cut and the kill.
				rs.SetDownAfter(t, 10*time.Second)
				e.redis = rs.Client(t)
				cut = func() testsupport.ReplicationCut { return rs.CutReplication(t) }
				kill = func(c testsupport.ReplicationCut) { rs.Kill(c.Master); rs.WaitPromoted(t, c.Replica) }
			case "cluster":
				rc := testsupport.StartRedisCluster(t, true)
				rc.SetNodeTimeout(t, 10*time.Second)
				e.redis = rc.Client(t)
				// One master of three: two would leave no majority to
				// promote a replica.
				cut = func() testsupport.ReplicationCut {
					return rc.CutReplication(t, rc.MasterFor(t, readmodel.PrefixFor(0)+"meta"))
				}
				kill = func(c testsupport.ReplicationCut) { rc.Kill(c.Master); rc.WaitPromoted(t, c.Replica) }
			}
			reg, _ := e.startCounted(t, false)
			// Publish continuously, in small batches, until stopped (at the
			// latest when the test ends, before NATS stops), at most 2,000
			// events a second: the cache must hold every event sent
			// (requireRedisExact), and its bound is 100,000; unpaced, a
			// fast machine sent 204,150 while the failover took its time.
			var mu sync.Mutex
			stop, published := make(chan struct{}), make(chan error, 1)
			go func() {
				published <- func() error {
					pace := time.NewTicker(25 * time.Millisecond)
					defer pace.Stop()
					for {
						select {
						case <-stop:
							return nil
						case <-pace.C:
						}
						mu.Lock()
						err := e.tryPublish(50)
						mu.Unlock()
						if err != nil {
							return err
						}
					}
				}()
			}()
			stopPublishing := sync.OnceValue(func() error {
				close(stop)
				return <-published
			})
			t.Cleanup(func() { _ = stopPublishing() })
			sent := func() int {
				mu.Lock()
				defer mu.Unlock()
				return e.total()
			}
			c := readmodel.NewCounters(e.redis, readmodel.CountersOptions{})
			total := func() int64 {
				n, _ := c.Total(ctx)
				return n
			}
			ackFloor := func() uint64 {
				cons, err := e.js.Consumer(ctx, schemas.StreamName, Durable(Counters))
				if err != nil {
					return 0
				}
				info, err := cons.Info(ctx)
				if err != nil {
					return 0
				}
				return info.AckFloor.Stream
			}
			// Once the projector is well into the stream, the replica
			// stops receiving writes; once 300 more events are acked —
			// acked, not only applied: an acked message is never delivered
			// again, so only the verification can bring its effect back —
			// its master is killed, with batches in flight: the effect of
			// at least 300 acked events is lost with it (deterministically,
			// not by the chance of a replication lag).
			require.Eventually(t, func() bool { return total() >= 600 }, 5*time.Minute, 20*time.Millisecond)
			rcut := cut()
			from := uint64(total())
			require.Eventually(t, func() bool { return ackFloor() >= from+300 }, 5*time.Minute, 20*time.Millisecond,
				"300 events acked after the cut")
			// What the replica lacks: it holds what it had at the cut.
			down, err := rcut.Holds(ctx)
			require.NoError(t, err, "the cut held until the kill")
			held, err := rcut.ReplicaClient(t).HGet(ctx, readmodel.PrefixFor(0)+"all", "_total").Uint64()
			require.NoError(t, err, "the replica's counters")
			acked := ackFloor()
			require.LessOrEqual(t, held+300, acked, "the replica lacks 300 acked events")
			t.Logf("%s: killing %s; its replica %s, cut %s ago, holds %d events of %d acked", kind, rcut.Master, rcut.Replica, down, held, acked)
			kill(rcut)
			// Keep publishing through the failover and after it.
			at := sent()
			require.Eventually(t, func() bool { return sent() >= at+600 }, 5*time.Minute, 20*time.Millisecond)
			require.NoError(t, stopPublishing())
			e.requireRedisExact(t)
			e.waitCheckpoints(t, uint64(e.total()))
			t.Logf("%s: %d events; restored after the failover: counters %v, cache %v", kind, e.total(),
				restored(t, reg, Counters), restored(t, reg, Recent))
			require.GreaterOrEqual(t, restored(t, reg, Counters), float64(acked-held), "the counted events the new master lacked")
		})
	}
}
