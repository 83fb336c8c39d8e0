package notifier

import (
	"context"
	"time"

	"github.com/kilnhq/kiln/notifier/internal/decide"
)

// watchLag sets the lag gauges from the notifier consumer's state, named
// as the projector's: messages pending or unacked, and the age of the
// oldest of them (the stream message just above the ack floor; 0 when
// caught up).
func (s *Service) watchLag(ctx context.Context) {
	cons, err := s.events.Consumer(ctx, decide.Durable)
	if err != nil {
		return // not created yet, or NATS away: keep the last values
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return
	}
	lag := info.NumPending + uint64(info.NumAckPending)
	s.metrics.LagMessages.Set(float64(lag))
	seconds := 0.0
	if lag > 0 {
		if oldest, err := s.events.GetMsg(ctx, info.AckFloor.Stream+1); err == nil {
			seconds = max(0, time.Since(oldest.Time).Seconds())
		} else if info.AckFloor.Last != nil {
			seconds = time.Since(*info.AckFloor.Last).Seconds()
		}
	}
	s.metrics.LagSeconds.Set(seconds)
}
