package projector

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/projector/internal/consume"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

func TestTwoProjectorsShareTheWorkExactly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.publish(t, 1500)
	e.start(t, nil)
	e.start(t, nil)
	e.publish(t, 1500)
	e.requireExact(t)
}

// crashAfterWrite applies the first batch it sees and then "crashes" the
// process (cancels its context) before the consumer can ack.
func crashAfterWrite(cancel func()) func(string, consume.Projection) consume.Projection {
	var crashed atomic.Bool
	return func(name string, p consume.Projection) consume.Projection {
		if name != History && name != Counters {
			return p
		}
		return projectionFunc(func(ctx context.Context, evs []schemas.Event) error {
			err := p.Apply(ctx, evs)
			if crashed.CompareAndSwap(false, true) || crashed.Load() {
				cancel()
			}
			return err
		})
	}
}

// crashMidBatch cancels the process while the first batch is being written.
func crashMidBatch(cancel func()) func(string, consume.Projection) consume.Projection {
	return func(name string, p consume.Projection) consume.Projection {
		if name != History && name != Counters {
			return p
		}
		return projectionFunc(func(ctx context.Context, evs []schemas.Event) error {
			if len(evs) < 2 { // no middle: crash in a later batch
				return p.Apply(ctx, evs)
			}
			half := len(evs) / 2
			if err := p.Apply(ctx, evs[:half]); err != nil {
				return err
			}
			cancel()
			return p.Apply(ctx, evs[half:])
		})
	}
}

type projectionFunc func(context.Context, []schemas.Event) error

func (f projectionFunc) Apply(ctx context.Context, evs []schemas.Event) error { return f(ctx, evs) }

func TestCrashedProjectorRestartsExactly(t *testing.T) {
	t.Parallel()
	for name, crash := range map[string]func(func()) func(string, consume.Projection) consume.Projection{
		"after write, before ack": crashAfterWrite,
		"mid batch":               crashMidBatch,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.publish(t, 2000)
			var stop func()
			stop = e.start(t, crash(func() { go stop() }))
			// The crashed projector wrote part of the events without acking.
			require.Eventually(t, func() bool {
				n, _ := readmodel.NewHistory(e.db, readmodel.DefaultCollections()).Count(context.Background())
				m, _ := readmodel.NewCounters(e.redis, readmodel.CountersOptions{}).Snapshot(context.Background(), time.Now())
				st, _ := readmodel.NewRecent(e.redis, readmodel.RecentOptions{}).State(context.Background())
				return n > 0 || m.Total > 0 || st.Count > 0
			}, 2*time.Minute, 20*time.Millisecond, "the crashed projector wrote nothing")
			stop()
			e.start(t, nil)
			e.publish(t, 500)
			e.requireExact(t)
		})
	}
}

func TestFlushedRedisIsRebuiltFromTheStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.publish(t, 3000)
	e.start(t, nil)
	e.requireExact(t)

	require.NoError(t, e.redis.FlushAll(context.Background()).Err())
	e.requireExact(t) // idle: the watcher notices
	require.NoError(t, e.redis.FlushAll(context.Background()).Err())
	e.publish(t, 1000) // busy: the counting script notices
	e.requireExact(t)
}

func TestPoisonMessageIsRecordedAndSkipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.publish(t, 100)
	msg := nats.NewMsg("events.broken")
	msg.Data = []byte(`{"not":"an event"`)
	ack, err := e.js.PublishMsg(context.Background(), msg)
	require.NoError(t, err)
	e.publish(t, 100)
	e.start(t, nil)
	e.requireExact(t)

	ledger := readmodel.NewLedger(e.db)
	require.Eventually(t, func() bool {
		errs, err := ledger.Errors(context.Background(), 10)
		if err != nil {
			return false
		}
		recorded := map[string]bool{}
		for _, pe := range errs {
			recorded[pe.Projection] = true
		}
		return recorded[History] && recorded[Counters] && recorded[Recent] // one per projection
	}, 3*time.Minute, 50*time.Millisecond)
	errs, err := ledger.Errors(context.Background(), 10)
	require.NoError(t, err)
	for _, pe := range errs {
		require.EqualValues(t, ack.Sequence, pe.Seq)
		require.Equal(t, "events.broken", pe.Subject)
		require.Contains(t, pe.Reason, "undecodable")
	}
	// Nothing is left pending: the poison message was terminated, not retried.
	for _, name := range []string{History, Counters, Recent} {
		require.Eventually(t, func() bool {
			cons, err := e.js.Consumer(context.Background(), schemas.StreamName, Durable(name))
			if err != nil {
				return false
			}
			info, err := cons.Info(context.Background())
			return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream == uint64(e.total()+1)
		}, 3*time.Minute, 50*time.Millisecond, name)
	}
	// The watcher writes the checkpoint every PROJECTOR_CHECK_INTERVAL.
	require.Eventually(t, func() bool {
		cp, err := ledger.Checkpoint(context.Background(), History)
		return err == nil && cp == uint64(e.total()+1)
	}, 3*time.Minute, 20*time.Millisecond, "the history checkpoint reaches the poison message's seq")
}
