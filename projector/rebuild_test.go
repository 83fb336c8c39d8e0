package projector

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/projector/internal/consume"
	"github.com/kilnhq/kiln/projector/internal/streamread"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// runService starts a projector on e's servers after tweak has set its
// test seams.
func (e *testEnv) runService(t *testing.T, tweak func(*Service)) {
	t.Helper()
	svc, err := New(context.Background(), e.cfg, Deps{
		JetStream: e.js, Mongo: e.db, Redis: e.redis, Metrics: prometheus.NewRegistry(), Log: testsupport.Logger(t),
	})
	require.NoError(t, err)
	tweak(svc)
	testsupport.Run(t, context.Background(), svc.Run)
}

// Issue 13 item 4: a counters rebuild ended on the first empty fetch, with
// the counters short for good. It ends only at the sequence it set out to
// reach.
func TestCountersRebuildOutlastsEmptyFetches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.publish(t, 3000)
	var fetches atomic.Int64
	e.runService(t, func(s *Service) {
		s.replayFetch = func(read func() (streamread.Batch, error)) (streamread.Batch, error) {
			if fetches.Add(1)%2 == 0 {
				return streamread.Batch{}, nil // every other wait comes back empty
			}
			return read()
		}
	})
	e.requireExact(t)
	require.NoError(t, e.redis.FlushAll(context.Background()).Err())
	e.requireExact(t)
	require.Greater(t, fetches.Load(), int64(4), "the rebuild fetched through empty waits")
}

// Issue 13 item 4: while the counters were rebuilt, the watcher wrote the
// live consumer's ack floor as asOfSeq although the totals were partial
// (the fresh epoch existed before the rebuild was marked). asOfSeq never
// claims a sequence whose events are not all counted.
func TestAsOfSeqNeverOverstatesDuringARebuild(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.publish(t, 3000)
	e.runService(t, func(s *Service) {
		s.wrap = func(name string, p consume.Projection) consume.Projection {
			if name != countersReplay {
				return p
			}
			return projectionFunc(func(ctx context.Context, evs []schemas.Event) error {
				select { // a slow replay, so the watcher runs many times during it
				case <-time.After(150 * time.Millisecond):
				case <-ctx.Done():
				}
				return p.Apply(ctx, evs)
			})
		}
	})
	e.requireExact(t)
	counters := readmodel.NewCounters(e.redis, readmodel.CountersOptions{})
	require.NoError(t, e.redis.FlushAll(context.Background()).Err())
	var partial, over atomic.Bool
	require.Eventually(t, func() bool {
		m, err := counters.Snapshot(context.Background(), time.Now())
		if err != nil {
			return false
		}
		if int64(m.AsOfSeq) > m.Total {
			t.Logf("asOfSeq %d claims more than the %d events counted", m.AsOfSeq, m.Total)
			over.Store(true)
		}
		if m.Total < int64(e.total()) {
			partial.Store(true)
		}
		return over.Load() || (m.Total == int64(e.total()) && m.AsOfSeq == uint64(e.total()))
	}, 60*time.Second, 5*time.Millisecond)
	require.False(t, over.Load(), "asOfSeq overstated the counted events")
	require.True(t, partial.Load(), "the test watched the rebuild in progress")
}
