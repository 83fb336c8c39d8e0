package faults

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// settleWithin bounds a recovery: the projector catching up after the
// fault, on a loaded 2-core machine.
const settleWithin = 5 * time.Minute

// waitAcked waits until the workload has n events acked.
func waitAcked(t *testing.T, w *workload, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return w.ackedCount() >= n }, 3*time.Minute, 20*time.Millisecond,
		"the workload never reached %d acked events (last failure: %s)", n, w.lastFail)
}

// kill -9 of the projector while it projects: the events it had fetched
// and not acked come back to its successor; nothing is lost or counted
// twice.
func TestProjectorKilledMidBatch(t *testing.T) {
	t.Parallel()
	p := startPipeline(t, nil)
	w := startWorkload(t, p.ingestURL, 4, 2*time.Millisecond)
	kills := 1
	if full() {
		kills = 3
	}
	for i := range kills {
		waitAcked(t, w, 300*(2*i+1))
		p.projector.kill()
		waitAcked(t, w, 300*(2*i+2)) // stored while no projector runs
		p.projector.start()
	}
	restarted := time.Now()
	w.finish()
	seen, _ := p.settle(t, w.ackedIDs(), settleWithin)
	report(t, "projector kill -9 mid-batch", w.ackedCount(), seen, time.Since(restarted))
}

// kill -9 of ingest with writes in flight: clients retrying with their ids
// end with each event stored once.
func TestIngestKilledWithWritesInFlight(t *testing.T) {
	t.Parallel()
	p := startPipeline(t, nil)
	w := startWorkload(t, p.ingestURL, 8, 0)
	waitAcked(t, w, 300)
	p.ingest.kill()
	time.Sleep(time.Second) // the fault: ingest is away for a second
	p.startIngest()
	restarted := time.Now()
	waitAcked(t, w, w.ackedCount()+300)
	w.finish()
	require.Positive(t, w.retries, "some writes were in flight or refused while ingest was down")
	seen, _ := p.settle(t, w.ackedIDs(), settleWithin)
	report(t, "ingest kill -9 with writes in flight", w.ackedCount(), seen, time.Since(restarted))
}

// MongoDB unreachable for the outage: ingest keeps accepting, the
// projector waits (no event terminated as poison) and catches up.
func TestMongoUnreachable(t *testing.T) {
	onlyFull(t)
	t.Parallel()
	p := startPipeline(t, nil)
	w := startWorkload(t, p.ingestURL, 2, 5*time.Millisecond)
	waitAcked(t, w, 200)
	p.mongoProxy.Cut()
	before := w.ackedCount()
	time.Sleep(outage(t)) // the fault's duration
	require.Greater(t, w.ackedCount(), before, "ingest kept accepting while MongoDB was unreachable")
	p.mongoProxy.Restore()
	restored := time.Now()
	waitAcked(t, w, w.ackedCount()+100)
	w.finish()
	seen, _ := p.settle(t, w.ackedIDs(), settleWithin)
	report(t, "MongoDB unreachable", w.ackedCount(), seen, time.Since(restored))
}

// Redis killed for the outage and restarted empty: the counters and the
// recent cache are rebuilt from the stream, exact.
func TestRedisKilledAndRestartedEmpty(t *testing.T) {
	onlyFull(t)
	t.Parallel()
	p := startPipeline(t, nil)
	w := startWorkload(t, p.ingestURL, 2, 5*time.Millisecond)
	waitAcked(t, w, 200)
	p.redis.kill()
	time.Sleep(outage(t)) // the fault's duration
	p.startRedis()
	restarted := time.Now()
	waitAcked(t, w, w.ackedCount()+100)
	w.finish()
	seen, _ := p.settle(t, w.ackedIDs(), settleWithin)
	report(t, "Redis killed and restarted empty", w.ackedCount(), seen, time.Since(restarted))
}

// NATS restarted under the workload: ingest answers 503 meanwhile (the
// clients retry), the projector's consumer resumes.
func TestNATSRestart(t *testing.T) {
	onlyFull(t)
	t.Parallel()
	p := startPipeline(t, nil)
	w := startWorkload(t, p.ingestURL, 4, 2*time.Millisecond)
	waitAcked(t, w, 300)
	p.nats.Restart(t)
	restarted := time.Now()
	waitAcked(t, w, w.ackedCount()+300)
	w.finish()
	seen, _ := p.settle(t, w.ackedIDs(), settleWithin)
	report(t, "NATS restart", w.ackedCount(), seen, time.Since(restarted))
}

// A burst of far-future timestamps beside the workload: those beyond the
// accepted skew are refused (400), the rest are projected exactly, and no
// Redis key is kept for longer than the retention allows.
func TestBurstOfFarFutureTimestamps(t *testing.T) {
	onlyFull(t)
	t.Parallel()
	p := startPipeline(t, nil)
	w := startWorkload(t, p.ingestURL, 2, 5*time.Millisecond)
	waitAcked(t, w, 100)
	now := time.Now()
	for i, ahead := range []time.Duration{time.Minute, time.Hour, 23 * time.Hour, 25 * time.Hour,
		365 * 24 * time.Hour, 100 * 365 * 24 * time.Hour} {
		for j := range 50 {
			w.post(burstID(i, j), "fault.future", now.Add(ahead).UnixMilli())
		}
	}
	w.finish()
	require.Len(t, w.refused, 150, "timestamps more than INGEST_MAX_FUTURE_SKEW (24h) ahead are refused")
	seen, recovery := p.settle(t, w.ackedIDs(), settleWithin)
	ctx := context.Background()
	var longest time.Duration
	iter := p.rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		if ttl, err := p.rdb.TTL(ctx, iter.Val()).Result(); err == nil && ttl > longest {
			longest = ttl
		}
	}
	require.NoError(t, iter.Err())
	t.Logf("longest Redis TTL after the burst: %s", longest)
	require.Less(t, longest, 8*24*time.Hour, "no Redis key outlives the retention by the accepted skew")
	report(t, "burst of far-future timestamps", w.ackedCount(), seen, recovery)
}

func burstID(i, j int) string {
	return "future-" + string(rune('a'+i)) + "-" + string(rune('a'+j/26)) + string(rune('a'+j%26))
}
