package readmodel_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

func failoverEvents(n int) []schemas.Event {
	now := time.Now()
	evs := make([]schemas.Event, n)
	for i := range evs {
		evs[i] = schemas.Event{ID: fmt.Sprintf("f%03d", i), EventType: "a", UserID: "u", Timestamp: now.UnixMilli() + int64(i), Seq: uint64(i + 1)}
	}
	return evs
}

// TestAnotherMasterHoldsBackCheckpointsUntilVerified: counters and a
// cache started on a master are verified there; on a master with another
// replication ID (a promoted replica) neither checkpoint advances, the
// cache answers no query and a rebuild begun on the old master is not
// marked complete, until MarkVerified records the new master — which it
// refuses if the state it was checked from changed meanwhile.
func TestAnotherMasterHoldsBackCheckpointsUntilVerified(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := testsupport.StartRedis(t).Client(t)
	now := time.Now()
	evs := failoverEvents(20)
	c := readmodel.NewCounters(rdb, readmodel.CountersOptions{})
	_, err := c.Apply(ctx, evs[:10], now)
	require.NoError(t, err)
	rc := readmodel.NewRecent(rdb, readmodel.RecentOptions{})
	_, err = rc.Apply(ctx, evs[:10], now)
	require.NoError(t, err)
	epoch, _, err := rc.Start(ctx, now)
	require.NoError(t, err)
	old, err := rc.CheckMaster(ctx)
	require.NoError(t, err)
	require.True(t, old.Exists && old.Verified, "started here: verified here")
	ok, err := rc.MarkCompleteOn(ctx, epoch, old.Replid)
	require.NoError(t, err)
	require.True(t, ok)
	wrote, err := c.SetLiveCheckpoint(ctx, 10)
	require.NoError(t, err)
	require.True(t, wrote)
	require.NoError(t, rc.SetPositions(ctx, 10, 10))
	_, ok, reason, err := rc.Find(ctx, readmodel.Query{Limit: 5})
	require.NoError(t, err)
	require.True(t, ok, reason)

	testsupport.NewReplicationID(t, rdb)
	cc, err := c.CheckMaster(ctx)
	require.NoError(t, err)
	require.True(t, cc.Exists)
	require.False(t, cc.Verified, "another master holds the counters")
	require.EqualValues(t, 10, cc.Checkpoint)
	require.NotEqual(t, old.Replid, cc.Replid)
	wrote, err = c.SetLiveCheckpoint(ctx, 20)
	require.NoError(t, err)
	require.False(t, wrote, "no checkpoint on an unverified master")
	_, ok, reason, err = rc.Find(ctx, readmodel.Query{Limit: 5})
	require.NoError(t, err)
	require.False(t, ok)
	require.Equal(t, "unverified", reason)
	require.NoError(t, rc.SetPositions(ctx, 20, 20))
	st, err := rc.State(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 10, st.Checkpoint, "no cache positions on an unverified master")
	ok, err = rc.MarkCompleteOn(ctx, epoch, old.Replid)
	require.NoError(t, err)
	require.False(t, ok, "a rebuild that ran on the old master is not complete here")

	// A check whose state changed before the mark (a checkpoint reset by a
	// rebuild mark) does not verify.
	require.NoError(t, c.MarkRebuild(ctx, 20))
	ok, err = c.MarkVerified(ctx, cc)
	require.NoError(t, err)
	require.False(t, ok, "the state checked changed")
	cc, err = c.CheckMaster(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 0, cc.Checkpoint)
	ok, err = c.MarkVerified(ctx, cc)
	require.NoError(t, err)
	require.True(t, ok)
	r, _, err := c.PendingRebuild(ctx)
	require.NoError(t, err)
	_, err = c.EndRebuild(ctx, "x", r)
	require.NoError(t, err)
	wrote, err = c.SetLiveCheckpoint(ctx, 20)
	require.NoError(t, err)
	require.True(t, wrote, "verified: the checkpoint advances again")

	rcc, err := rc.CheckMaster(ctx)
	require.NoError(t, err)
	require.False(t, rcc.Verified)
	ok, err = rc.MarkVerified(ctx, rcc)
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, reason, err = rc.Find(ctx, readmodel.Query{Limit: 5})
	require.NoError(t, err)
	require.True(t, ok, reason)
}

// TestRecentBuildRecordsItsMaster: a build written into a new cache
// records the master holding it, as a cache Apply started does; it is
// marked complete on that master, and not on another (a failover between
// the write and the switch: the writes may be lost there, and the live
// projector rebuilds the cache instead).
func TestRecentBuildRecordsItsMaster(t *testing.T) {
	t.Parallel()
	for _, failover := range []bool{false, true} {
		t.Run(fmt.Sprint("failover ", failover), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			rdb := testsupport.StartRedis(t).Client(t)
			rc := readmodel.NewRecent(rdb, readmodel.RecentOptions{MaxEvents: 5})
			b := rc.NewBuild()
			require.NoError(t, b.Add(failoverEvents(10)))
			require.NoError(t, b.Write(ctx))
			written, err := rc.CheckMaster(ctx)
			require.NoError(t, err)
			require.True(t, written.Verified, "the build's master recorded")
			if failover {
				testsupport.NewReplicationID(t, rdb)
			}
			epoch, created, err := rc.Start(ctx, time.Now())
			require.NoError(t, err)
			require.True(t, created)
			ok, err := rc.MarkComplete(ctx, epoch)
			require.NoError(t, err)
			require.Equal(t, !failover, ok, "marked complete")
			check, err := rc.CheckMaster(ctx)
			require.NoError(t, err)
			require.Equal(t, !failover, check.Verified, "verified after the start")
		})
	}
}

// TestClusterFailoverIsDetected: a real promotion (CLUSTER FAILOVER TAKEOVER on the
// replica of the master holding the counters) leaves them unverified on
// the new master.
func TestClusterFailoverIsDetected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rcl := testsupport.StartRedisCluster(t, true)
	cc := rcl.Client(t)
	c := readmodel.NewCounters(cc, readmodel.CountersOptions{})
	_, err := c.Apply(ctx, failoverEvents(10), time.Now())
	require.NoError(t, err)
	before, err := c.CheckMaster(ctx)
	require.NoError(t, err)
	require.True(t, before.Verified)

	key := readmodel.PrefixFor(0) + "meta"
	master, err := cc.MasterForKey(ctx, key)
	require.NoError(t, err)
	var replica string
	require.Eventually(t, func() bool {
		nodes, err := master.ClusterNodes(ctx).Result()
		if err != nil {
			return false
		}
		id, err := master.Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			return false
		}
		replica = replicaOf(nodes, id)
		return replica != ""
	}, time.Minute, 50*time.Millisecond)
	r := redis.NewClient(&redis.Options{Addr: replica})
	defer r.Close()
	// The replica holds the counters before it takes over (else it is
	// promoted empty: a flush, not what this test is about).
	offset, err := master.Do(ctx, "INFO", "replication").Text()
	require.NoError(t, err)
	want := infoField(offset, "master_repl_offset")
	require.Eventually(t, func() bool {
		info, err := r.Info(ctx, "replication").Result()
		got, _ := strconv.ParseInt(infoField(info, "slave_repl_offset"), 10, 64)
		w, _ := strconv.ParseInt(want, 10, 64)
		return err == nil && infoField(info, "master_link_status") == "up" && got >= w
	}, 3*time.Minute, 50*time.Millisecond, "the replica never caught up")
	require.NoError(t, r.Do(ctx, "CLUSTER", "FAILOVER", "TAKEOVER").Err()) // no vote: deterministic on a loaded machine
	var last string
	ok := assert.Eventually(t, func() bool {
		got, err := c.CheckMaster(ctx)
		role, _ := r.Info(ctx, "replication").Result()
		last = fmt.Sprintf("%+v %v; replica: %s", got, err, role)
		return err == nil && got.Exists && !got.Verified && got.Replid != before.Replid
	}, 3*time.Minute, 50*time.Millisecond)
	require.True(t, ok, "the promoted replica is not detected; before %+v, last %s", before, last)
	total, err := c.Total(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 10, total)
}

// replicaOf finds, in CLUSTER NODES output, the address of a replica of
// the node with id.
func replicaOf(nodes, id string) string {
	for line := range strings.Lines(nodes) {
		f := strings.Fields(line)
		if len(f) > 3 && f[3] == id {
			addr, _, _ := strings.Cut(f[1], "@")
			return addr
		}
	}
	return ""
}

// TestDurabilityWaitsForReplicas: with Durability, a write the replica
// confirms succeeds, and one it cannot receive fails (so the projector
// does not ack it), for the counters and the cache.
func TestDurabilityWaitsForReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs := testsupport.StartRedisSentinel(t)
	rdb := rs.Client(t)
	// Generous while the replica receives (a loaded machine), short once
	// it cannot: that wait fails however fast the machine is.
	d := readmodel.Durability{Replicas: 1, Timeout: time.Minute}
	c := readmodel.NewCounters(rdb, readmodel.CountersOptions{Durability: d})
	rc := readmodel.NewRecent(rdb, readmodel.RecentOptions{Durability: d})
	evs := failoverEvents(20)
	// Scripts not loaded yet: the EVALSHA, WAIT pipeline falls back to EVAL.
	res, err := c.Apply(ctx, evs[:10], time.Now())
	require.NoError(t, err)
	require.Equal(t, 10, res.Applied)
	_, err = rc.Apply(ctx, evs[:10], time.Now())
	require.NoError(t, err)

	rs.CutReplication(t)
	d.Timeout = 100 * time.Millisecond
	c = readmodel.NewCounters(rdb, readmodel.CountersOptions{Durability: d})
	rc = readmodel.NewRecent(rdb, readmodel.RecentOptions{Durability: d})
	_, err = c.Apply(ctx, evs[10:], time.Now())
	require.ErrorContains(t, err, "0 of 1 redis replicas confirmed")
	_, err = rc.Apply(ctx, evs[10:], time.Now())
	require.ErrorContains(t, err, "0 of 1 redis replicas confirmed")
}

// BenchmarkCountersApplyDurability: the cost of waiting for the replica
// of a Sentinel group's master after each 500-event batch.
func BenchmarkCountersApplyDurability(b *testing.B) {
	ctx := context.Background()
	rdb := testsupport.StartRedisSentinel(b).Client(b)
	for _, replicas := range []int{0, 1} {
		b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) {
			c := readmodel.NewCounters(rdb, readmodel.CountersOptions{
				Prefix:     fmt.Sprintf("bench%d:", replicas),
				Durability: readmodel.Durability{Replicas: replicas, Timeout: time.Second},
			})
			now := time.Now()
			seq := uint64(0)
			evs := make([]schemas.Event, 500)
			for b.Loop() {
				for i := range evs {
					seq++
					evs[i] = schemas.Event{ID: fmt.Sprint(seq), EventType: "a", Timestamp: now.UnixMilli(), Seq: seq}
				}
				if _, err := c.Apply(ctx, evs, now); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
		})
	}
}

// infoField is a field of INFO output ("" if absent).
func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// TestReplayCheckpointNotClaimedOnAnotherMaster: a replay claims its
// shadow counters' progress with SetCheckpoint at the switch. If their
// master failed over during the replay, the new one may lack events below
// that sequence: the checkpoint is not written there (the live projector
// verifies the counters from the one they had), and it is again once the
// new master has verified them.
func TestReplayCheckpointNotClaimedOnAnotherMaster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := testsupport.StartRedis(t).Client(t)
	now := time.Now()
	evs := failoverEvents(20)
	c := readmodel.NewCounters(rdb, readmodel.CountersOptions{})
	_, err := c.Apply(ctx, evs[:10], now)
	require.NoError(t, err)
	require.NoError(t, c.SetCheckpoint(ctx, 10))
	cp, err := c.Checkpoint(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 10, cp, "claimed on the master that started the counters")

	testsupport.NewReplicationID(t, rdb)
	_, err = c.Apply(ctx, evs[10:], now)
	require.NoError(t, err)
	require.NoError(t, c.SetCheckpoint(ctx, 20))
	cp, err = c.Checkpoint(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 10, cp, "a failed-over master: the replay's progress is not claimed")

	check, err := c.CheckMaster(ctx)
	require.NoError(t, err)
	require.False(t, check.Verified)
	ok, err := c.MarkVerified(ctx, check)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, c.SetCheckpoint(ctx, 20))
	cp, err = c.Checkpoint(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 20, cp, "verified: claimed again")
}
