package projector

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// watch periodically publishes checkpoints and lag, and notices a Redis
// that lost the counters while no events were flowing.
func (s *Service) watch(ctx context.Context) error {
	t := time.NewTicker(s.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s.verifyMasters(ctx)
		for _, name := range []string{History, Counters, Recent, Orders} {
			s.checkpoint(ctx, name)
		}
		s.watchRecent(ctx)
		s.publishStatus(ctx, time.Now())
		started, err := s.counters.Started(ctx, time.Now())
		if err != nil {
			s.warns.warn(s.deps.Log, "check counters", "err", err)
			continue
		}
		if !started {
			s.countersLost(ctx)
		} else if _, pending, err := s.counters.PendingRebuild(ctx); err == nil && pending {
			s.kickRebuild()
		}
	}
}

// checkpoint records a projection's ack floor — every sequence at or below
// it is applied, since messages are acked only after their write — and its
// lag.
func (s *Service) checkpoint(ctx context.Context, name string) {
	cons, err := s.stream.Consumer(ctx, Durable(name))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return
	}
	if err != nil {
		s.warns.warn(s.deps.Log, "consumer info", "projection", name, "err", err)
		return
	}
	info := cons.CachedInfo()
	if fresh, err := cons.Info(ctx); err == nil {
		info = fresh
	}
	floor := info.AckFloor.Stream
	lag := info.NumPending + uint64(info.NumAckPending)
	s.metrics.LagMessages.WithLabelValues(name).Set(float64(lag))
	s.metrics.Checkpoint.WithLabelValues(name).Set(float64(floor))
	lagSeconds := 0.0
	if lag > 0 && info.AckFloor.Last != nil {
		lagSeconds = time.Since(*info.AckFloor.Last).Seconds()
	}
	s.metrics.LagSeconds.WithLabelValues(name).Set(lagSeconds)
	if (name == History || name == Orders) && floor == s.lastCheckpoint[name] {
		return // unchanged: spare MongoDB a write (Redis is cheap, and may have been flushed)
	}
	var werr error
	if name == Counters {
		// Not while a rebuild is pending: the totals are partial below
		// the floor (the replay raises the checkpoint as it goes).
		_, werr = s.counters.SetLiveCheckpoint(ctx, floor)
	} else {
		werr = s.ledger.SetCheckpoint(ctx, name, floor, time.Now())
	}
	if werr != nil {
		s.deps.Log.Debug("write checkpoint; will retry", "projection", name, "err", werr)
		return
	}
	s.lastCheckpoint[name] = floor
}
