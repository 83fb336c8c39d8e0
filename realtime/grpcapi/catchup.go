package grpcapi

import (
	"context"
	"time"

	"github.com/kilnhq/kiln/schemas"
)

// ordersDurable is the projector's consumer of the orders read model
// (projector.Durable(projector.Orders)).
const ordersDurable = "projector-orders"

// waitOrdersProjected reads the consumer after catchUpPoll, then at
// intervals doubling up to catchUpPollMax: a GetOrders waiting on a lagging
// projection reads the consumer a few times a second, not 50.
const (
	catchUpPoll    = 20 * time.Millisecond
	catchUpPollMax = 250 * time.Millisecond
)

// waitOrdersProjected waits, at most CatchUpWait, until the orders
// projection has applied every event stored when it was called: its
// consumer's ack floor (acks follow durable writes) reaches the stream's
// last sequence. The old order system answered GetOrders from its own
// writes, so a client that creates an order and lists at once finds it.
// Without a projector (no consumer) it returns at once.
func (s *Server) waitOrdersProjected(ctx context.Context) {
	if s.cfg.CatchUpWait <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CatchUpWait)
	defer cancel()
	stream, err := s.deps.JetStream.Stream(ctx, schemas.StreamName)
	if err != nil {
		return
	}
	target := stream.CachedInfo().State.LastSeq
	cons, err := stream.Consumer(ctx, ordersDurable)
	if err != nil {
		return
	}
	t := time.NewTimer(catchUpPoll)
	defer t.Stop()
	for wait := catchUpPoll; ; wait = min(2*wait, catchUpPollMax) {
		info, err := cons.Info(ctx)
		if err != nil || info.AckFloor.Stream >= target {
			return
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
