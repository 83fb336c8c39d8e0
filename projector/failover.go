package projector

import (
	"context"
	"fmt"
	"time"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// After a Redis failover the promoted replica holds a prefix of its old
// master's writes: the effect of events this projector applied and acked
// may be missing (replication is asynchronous). The counters and the cache
// each record the master that verified them (readmodel/failover.go); when
// another master holds them, the projector re-applies the stream above
// their checkpoint — the seen bitmaps and the cache's ids make that
// idempotent, and it restores exactly what was lost — and records the new
// master, which lets their checkpoints advance and the cache answer again.
// The counters and the cache have slots of their own (in a Cluster, often
// two masters): each is checked on its own.

// masterCheck is one read model's side of the verification.
type masterCheck struct {
	name  string
	check func(ctx context.Context) (readmodel.MasterCheck, error)
	mark  func(ctx context.Context, c readmodel.MasterCheck) (bool, error)
	// skip: nothing to re-apply (the cache is being rebuilt from the
	// stream's start anyway).
	skip func(ctx context.Context) bool
	// apply re-applies events and returns how many were missing.
	apply func(ctx context.Context, events []schemas.Event) (int, error)
}

// verifyMasters runs the check of the counters and the cache. Called from
// watch, every CheckInterval: two script calls when nothing changed.
func (s *Service) verifyMasters(ctx context.Context) {
	if s.noFailoverCheck {
		return
	}
	for _, m := range []masterCheck{{
		name: Counters, check: s.counters.CheckMaster, mark: s.counters.MarkVerified,
		skip: func(context.Context) bool { return false },
		apply: func(ctx context.Context, events []schemas.Event) (int, error) {
			res, err := s.counters.Apply(ctx, events, time.Now())
			if err == nil && res.Fresh {
				s.countersLost(ctx)
			}
			return res.Applied, err
		},
	}, {
		name: Recent, check: s.recent.CheckMaster, mark: s.recent.MarkVerified,
		skip: func(ctx context.Context) bool {
			st, err := s.recent.State(ctx)
			return err == nil && !st.Complete
		},
		apply: func(ctx context.Context, events []schemas.Event) (int, error) {
			res, err := s.recent.Apply(ctx, events, time.Now())
			if err == nil && res.Fresh {
				s.kickRecentRebuild()
			}
			return res.Added, err
		},
	}} {
		if err := s.verifyMaster(ctx, m); err != nil && ctx.Err() == nil {
			s.warns.warn(s.deps.Log, "verify redis after a failover; will retry", "projection", m.name, "err", err)
		}
	}
}

func (s *Service) verifyMaster(ctx context.Context, m masterCheck) error {
	c, err := m.check(ctx)
	if err != nil || !c.Exists || c.Verified {
		return err // none: a flushed Redis is the rebuilds' job
	}
	// Every event acked before this master took over is in the stream by
	// now: up to its last sequence, whatever was lost is restored.
	info, err := s.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	upTo, start, restored := info.State.LastSeq, time.Now(), 0
	if upTo > c.Checkpoint && !m.skip(ctx) {
		_, err := s.replay(ctx, streamReplay{
			name: m.name + " verification", from: c.Checkpoint + 1, upTo: upTo, size: s.cfg.BatchSize * 2,
			apply: func(ctx context.Context, events []schemas.Event) error {
				n, err := m.apply(ctx, events)
				restored += n
				return err
			},
			renew: func(context.Context) (bool, error) { return true, nil }, // no lease: idempotent
		})
		// Counted even if this attempt fails: what it restored is in Redis,
		// and the next attempt finds it there and counts only the rest.
		s.metrics.FailoverRestored.WithLabelValues(m.name).Add(float64(restored))
		if err != nil {
			return err
		}
	}
	ok, err := m.mark(ctx, c)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("the redis master or the state verified changed during the verification")
	}
	s.deps.Log.Warn("redis master changed: verified against the stream", "projection", m.name,
		"from", c.Checkpoint+1, "upTo", upTo, "restored", restored, "took", time.Since(start))
	return nil
}
