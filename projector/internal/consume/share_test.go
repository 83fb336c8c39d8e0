package consume

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// ledger is an idempotent projection shared by several loops: it keeps
// the set of event ids applied and which loop applied each first.
type ledger struct {
	mu    sync.Mutex
	seen  map[string]string
	count map[string]int
}

func (l *ledger) apply(loop string, evs []schemas.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range evs {
		if _, ok := l.seen[ev.ID]; !ok {
			l.seen[ev.ID] = loop
			l.count[loop]++
		}
	}
}

func (l *ledger) snapshot() (total int, count map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	count = map[string]int{}
	for k, v := range l.count {
		count[k] = v
	}
	return len(l.seen), count
}

type loopProjection func(context.Context, []schemas.Event) error

func (f loopProjection) Apply(ctx context.Context, evs []schemas.Event) error { return f(ctx, evs) }

type noObserver struct{}

func (noObserver) Batch(int, time.Duration) {}
func (noObserver) Redelivered(int)          {}
func (noObserver) Poisoned()                {}
func (noObserver) StoreError()              {}
func (noObserver) Stalled(bool)             {}

type noPoison struct{}

func (noPoison) RecordPoison(context.Context, Poison) error { return nil }

// Issue 25 item 2: two processes on one durable consumer share a backlog.
// The backlog (1,000 events) fits in the consumer's ack window (20 batches
// of 50). Loop a starts alone and its first batch is held until a has
// taken all it is going to take (nothing left on the server, or what it
// holds stops growing); it must hold no more than the batch it applies
// plus one batch ahead. Then loop b joins, as a second process started
// during a catch-up would, and a's batch is released. Each batch costs
// both loops the same simulated store time. Both must do at least a
// quarter of the work, and every event must be applied and acked. (A loop
// that buffers its whole window took the whole backlog: b got nothing.)
func TestTwoLoopsShareABacklog(t *testing.T) {
	t.Parallel()
	const total, batch = 1000, 50
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	ctx := context.Background()
	stream, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	require.NoError(t, err)
	publish(t, js, 0, total)

	l := &ledger{seen: map[string]string{}, count: map[string]int{}}
	spec := func(loop string, p Projection) Spec {
		return Spec{
			Stream: stream, Durable: "share", Projection: p, Poison: noPoison{}, Observe: noObserver{},
			Log: testsupport.Logger(t).With("loop", loop), Dependency: "ledger",
			BatchSize: batch, AckWait: 30 * time.Second, MaxDeliver: -1, PoisonAfter: 5,
		}
	}
	const storeTime = 20 * time.Millisecond // per batch, the same for both loops
	aApplying, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	a := loopProjection(func(ctx context.Context, evs []schemas.Event) error {
		first.Do(func() {
			close(aApplying)
			select {
			case <-release:
			case <-ctx.Done():
			}
		})
		time.Sleep(storeTime) // simulated store work, not synchronisation
		l.apply("a", evs)
		return nil
	})
	b := loopProjection(func(ctx context.Context, evs []schemas.Event) error {
		time.Sleep(storeTime)
		l.apply("b", evs)
		return nil
	})
	testsupport.Run(t, ctx, func(ctx context.Context) error { return Run(ctx, spec("a", a)) })
	select {
	case <-aApplying:
	case <-time.After(3 * time.Minute):
		t.Fatal("loop a applied nothing in 3 minutes")
	}
	cons, err := stream.Consumer(ctx, "share")
	require.NoError(t, err)
	held, stable := uint64(0), 0
	require.Eventually(t, func() bool { // a has taken all it will take
		info, err := cons.Info(ctx)
		if err != nil {
			return false
		}
		if info.NumPending == 0 {
			held = uint64(info.NumAckPending)
			return true
		}
		if uint64(info.NumAckPending) == held {
			stable++
		} else {
			held, stable = uint64(info.NumAckPending), 0
		}
		return stable >= 5
	}, 3*time.Minute, 100*time.Millisecond)
	t.Logf("loop a alone holds %d of %d events", held, total)
	testsupport.Run(t, ctx, func(ctx context.Context) error { return Run(ctx, spec("b", b)) })
	close(release)

	require.Eventually(t, func() bool {
		info, err := cons.Info(ctx)
		n, _ := l.snapshot()
		return err == nil && n == total && info.NumPending == 0 && info.NumAckPending == 0
	}, 3*time.Minute, 20*time.Millisecond, "every event applied and acked")
	n, count := l.snapshot()
	require.Equal(t, total, n)
	t.Logf("share: a %d, b %d of %d", count["a"], count["b"], total)
	require.GreaterOrEqual(t, count["a"], total/4, "loop a's share")
	require.GreaterOrEqual(t, count["b"], total/4, "loop b's share")
	require.LessOrEqual(t, held, uint64(2*batch), "loop a alone held more than its batch and one ahead")
}

func publish(t testing.TB, js jetstream.JetStream, from, n int) {
	t.Helper()
	futures := make([]jetstream.PubAckFuture, 0, n)
	now := time.Now().UnixMilli()
	for i := from; i < from+n; i++ {
		ev := schemas.Event{
			ID: fmt.Sprintf("ev-%07d", i), EventType: "page_view", UserID: "u1",
			Timestamp: now, ReceivedAt: now, Metadata: json.RawMessage(`{}`),
		}
		data, err := json.Marshal(ev)
		require.NoError(t, err)
		msg := nats.NewMsg(schemas.Subject(ev.EventType))
		msg.Data = data
		msg.Header.Set(schemas.HeaderMsgID, ev.ID)
		f, err := js.PublishMsgAsync(msg)
		require.NoError(t, err)
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			require.NoError(t, err)
		}
	}
}
