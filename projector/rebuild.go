package projector

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/projector/internal/consume"
	"github.com/kilnhq/kiln/schemas"
)

const rebuildLease = 15 * time.Second

// countersReplay names the counters rebuild's writes to Service.wrap.
const countersReplay = "counters-replay"

// countersLost is called once when Redis is found without counters (new or
// flushed): it marks a rebuild up to the stream's current last sequence.
// Live projection keeps running; the per-sequence guard makes the overlap
// between replay and live events count once.
func (s *Service) countersLost(ctx context.Context) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		s.warns.error(s.deps.Log, "counters lost but stream info failed; will retry", "err", err)
		return
	}
	if info.State.LastSeq == 0 {
		return
	}
	if err := s.counters.MarkRebuild(ctx, info.State.LastSeq); err != nil {
		s.warns.error(s.deps.Log, "mark counters rebuild", "err", err)
		return
	}
	s.deps.Log.Warn("redis counters missing: rebuilding from the stream", "upTo", info.State.LastSeq)
	s.kickRebuild()
}

func (s *Service) kickRebuild() {
	select {
	case s.rebuild <- struct{}{}:
	default:
	}
}

// rebuildLoop runs pending counters rebuilds, one at a time, when this
// process holds the lease.
func (s *Service) rebuildLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.rebuild:
		}
		r, pending, err := s.counters.PendingRebuild(ctx)
		if err != nil || !pending {
			continue
		}
		if ok, err := s.counters.AcquireLease(ctx, s.owner, rebuildLease); err != nil || !ok {
			continue
		}
		start := time.Now()
		n, err := s.replayCounters(ctx, r.UpTo)
		if err != nil {
			s.warns.error(s.deps.Log, "counters rebuild failed; will retry", "err", err)
			_ = s.counters.ReleaseLease(context.WithoutCancel(ctx), s.owner)
			continue
		}
		done, err := s.counters.EndRebuild(ctx, s.owner, r)
		if err != nil {
			s.deps.Log.Error("end counters rebuild", "err", err)
			continue
		}
		if !done {
			s.deps.Log.Warn("redis counters were flushed during their rebuild: rebuilding again")
			s.kickRebuild()
			continue
		}
		s.deps.Log.Info("counters rebuilt", "events", n, "upTo", r.UpTo, "took", time.Since(start))
	}
}

// replayCounters reads the stream from its start to upTo with an ordered
// consumer and counts every event (already counted ones are skipped by the
// guard).
func (s *Service) replayCounters(ctx context.Context, upTo uint64) (int, error) {
	oc, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{schemas.SubjectAll},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return 0, fmt.Errorf("replay consumer: %w", err)
	}
	// A flush during the replay restarts the counters: mark the rebuild
	// they need (EndRebuild then sees the new epoch and leaves it pending).
	var p consume.Projection = countersProjection{c: s.counters, onFresh: s.countersLost}
	if s.wrap != nil {
		p = s.wrap(countersReplay, p)
	}
	fetch := s.replayFetch
	if fetch == nil {
		fetch = func(c jetstream.Consumer, n int) (jetstream.MessageBatch, error) {
			return c.Fetch(n, jetstream.FetchMaxWait(time.Second))
		}
	}
	total := 0
	var pos uint64 // the last sequence read
	lastRenew := time.Now()
	for {
		batch, err := fetch(oc, s.cfg.BatchSize*2)
		if err != nil {
			return total, fmt.Errorf("replay fetch: %w", err)
		}
		var events []schemas.Event
		var last uint64
		for m := range batch.Messages() {
			ev, meta, err := schemas.DecodeMsg(m)
			if meta != nil {
				last = meta.Sequence.Stream
			}
			if err == nil {
				events = append(events, ev)
			}
		}
		if err := batch.Error(); err != nil && ctx.Err() == nil {
			return total, fmt.Errorf("replay fetch: %w", err)
		}
		if len(events) > 0 {
			if err := consume.ApplyWithRetry(ctx, p, events); err != nil {
				return total, err
			}
			total += len(events)
		}
		if last > 0 {
			pos = last
			// Every sequence up to pos is counted now (by the replay or
			// the live projection): that much asOfSeq may claim.
			if err := s.counters.SetCheckpoint(ctx, min(pos, upTo)); err != nil {
				return total, err
			}
		}
		if pos >= upTo || ctx.Err() != nil {
			return total, ctx.Err()
		}
		if last == 0 {
			// An empty fetch ends nothing by itself (a busy server can
			// leave a wait empty): only a stream that holds nothing
			// after pos (messages below upTo deleted or aged out) does.
			info, err := s.stream.Info(ctx)
			if err != nil {
				return total, fmt.Errorf("replay: stream info: %w", err)
			}
			if info.State.LastSeq <= pos || info.State.Msgs == 0 {
				return total, nil
			}
		}
		if time.Since(lastRenew) > rebuildLease/3 {
			if ok, err := s.counters.AcquireLease(ctx, s.owner, rebuildLease); err != nil || !ok {
				return total, fmt.Errorf("lost the rebuild lease")
			}
			lastRenew = time.Now()
		}
	}
}
