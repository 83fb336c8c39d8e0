package projector

import (
	"context"
	"time"

	"github.com/kilnhq/kiln/projector/internal/consume"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

const rebuildLease = 15 * time.Second

// countersReplay names the counters rebuild's writes to Service.wrap.
const countersReplay = "counters-replay"

// countersLost is called once when Redis is found without counters (new or
// flushed; they were started with a rebuild pending, target unset): it sets
// the rebuild's target, the stream's current last sequence.
// Live projection keeps running; the per-sequence guard makes the overlap
// between replay and live events count once.
func (s *Service) countersLost(ctx context.Context) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		s.warns.error(s.deps.Log, "counters lost but stream info failed; will retry", "err", err)
		return
	}
	if info.State.LastSeq == 0 {
		// Nothing to replay: counters started with a rebuild pending
		// are complete as they are.
		if r, pending, err := s.counters.PendingRebuild(ctx); err == nil && pending && r.UpTo == 0 {
			if _, err := s.counters.EndRebuild(ctx, s.owner, r); err != nil {
				s.warns.error(s.deps.Log, "end counters rebuild", "err", err)
			}
		}
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
		if r.UpTo == 0 {
			// Counters started with a rebuild whose target is not set
			// yet (a flushed Redis): set it; that kicks the rebuild.
			s.countersLost(ctx)
			continue
		}
		if ok, err := s.counters.AcquireLease(ctx, s.owner, rebuildLease); err != nil || !ok {
			continue
		}
		start := time.Now()
		n, err := s.replayCounters(ctx, r)
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

// replayCounters reads the stream from its start to r.UpTo and counts
// every event (already counted ones are skipped by the guard), raising
// asOfSeq as it goes while the counters are still r's.
func (s *Service) replayCounters(ctx context.Context, r readmodel.Rebuild) (int, error) {
	// A flush during the replay restarts the counters: mark the rebuild
	// they need (EndRebuild then sees the new epoch and leaves it pending).
	var p consume.Projection = countersProjection{c: s.counters, onFresh: s.countersLost}
	if s.wrap != nil {
		p = s.wrap(countersReplay, p)
	}
	return s.replay(ctx, streamReplay{
		name:  "counters replay",
		upTo:  r.UpTo,
		size:  s.cfg.BatchSize * 2,
		fetch: s.replayFetch,
		apply: func(ctx context.Context, events []schemas.Event) error {
			return consume.ApplyWithRetry(ctx, p, events)
		},
		// Every sequence up to pos is counted now (by the replay or the
		// live projection): that much asOfSeq may claim.
		progress: func(ctx context.Context, pos uint64) error {
			return s.counters.SetRebuildCheckpoint(ctx, r, pos)
		},
		renew: func(ctx context.Context) (bool, error) {
			return s.counters.AcquireLease(ctx, s.owner, rebuildLease)
		},
	})
}
