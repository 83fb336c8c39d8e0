package projector

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/projector/internal/consume"
	"github.com/kilnhq/kiln/schemas"
)

// slowApply makes the first slowCalls writes of a projection take delay,
// as a loaded store does, and records every sequence it stored.
type slowApply struct {
	next      consume.Projection
	delay     time.Duration
	slowCalls int64
	calls     atomic.Int64
	mu        sync.Mutex
	stored    map[uint64]bool
}

func (s *slowApply) Apply(ctx context.Context, events []schemas.Event) error {
	if s.calls.Add(1) <= s.slowCalls {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := s.next.Apply(ctx, events); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range events {
		s.stored[ev.Seq] = true
	}
	return nil
}

// firstMissing is the lowest sequence in 1..floor not stored, 0 if none.
func (s *slowApply) firstMissing(floor uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for seq := uint64(1); seq <= floor; seq++ {
		if !s.stored[seq] {
			return seq
		}
	}
	return 0
}

// A slow store makes messages wait behind the batch being written, many
// AckWaits long. With a bounded delivery limit the server gives such a
// message up (it is never redelivered) and moves the ack floor past it, so
// the checkpoint claimed events the history did not hold, and a restart
// lost them. With the defaults the ack floor never passes an event that
// was not stored.
func TestSlowStoreNeverLetsTheAckFloorPassAnUnstoredEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.cfg.BatchSize = 5 // 100 messages in flight (MaxAckPending is 20 batches)
	slow := &slowApply{delay: 1500 * time.Millisecond, slowCalls: 20, stored: map[uint64]bool{}}
	e.start(t, func(name string, p consume.Projection) consume.Projection {
		if name != History {
			return p
		}
		slow.next = p
		return slow
	})
	e.publish(t, 100)
	last := uint64(e.total())

	stream, err := e.js.Stream(context.Background(), schemas.StreamName)
	require.NoError(t, err)
	var floor, missing uint64
	require.Eventually(t, func() bool {
		cons, err := stream.Consumer(context.Background(), Durable(History))
		if err != nil {
			return false
		}
		info, err := cons.Info(context.Background())
		if err != nil {
			return false
		}
		floor = info.AckFloor.Stream
		if missing = slow.firstMissing(floor); missing != 0 {
			return true // the failure being tested: stop here and say so
		}
		return floor == last
	}, 5*time.Minute, 100*time.Millisecond, "history ack floor stopped at %d of %d", floor, last)
	require.Zerof(t, missing, "the ack floor (%d) passed event %d, which the history never stored", floor, missing)
}
