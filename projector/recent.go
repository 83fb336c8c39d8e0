package projector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// Recent is the projection keeping the newest events in Redis for GET /events.
const Recent = "recent"

// recentProjection writes the recent-events cache and notices a lost Redis.
type recentProjection struct {
	r       *readmodel.Recent
	onFresh func()
}

func (p recentProjection) Apply(ctx context.Context, events []schemas.Event) error {
	res, err := p.r.Apply(ctx, events, time.Now())
	if err == nil && res.Fresh {
		p.onFresh()
	}
	return err
}

func (s *Service) kickRecentRebuild() {
	select {
	case s.recentRebuild <- struct{}{}:
	default:
	}
}

// watchRecent records the cache's positions (the history's ack floor
// first, then the cache's) and starts a rebuild when the
// cache is new, flushed or incomplete. Called from watch.
func (s *Service) watchRecent(ctx context.Context) {
	hist, err := s.consumerInfo(ctx, History)
	if err != nil {
		return
	}
	rec, err := s.consumerInfo(ctx, Recent)
	if err != nil || rec == nil {
		return
	}
	var histFloor uint64
	if hist != nil {
		histFloor = hist.AckFloor.Stream
	}
	if _, _, err := s.recent.Start(ctx, time.Now()); err != nil {
		s.warns.warn(s.deps.Log, "check recent cache", "err", err)
		return
	}
	if err := s.recent.SetPositions(ctx, rec.AckFloor.Stream, histFloor); err != nil {
		s.deps.Log.Debug("recent cache positions; will retry", "err", err)
	}
	st, err := s.recent.State(ctx)
	switch {
	case err != nil:
	case !st.Complete:
		s.kickRecentRebuild()
	case !st.Whole:
		s.markRecentWhole(ctx, st.Epoch)
	}
}

// markRecentWhole records that the complete cache of epoch holds every
// event the history holds (readmodel.Recent.MarkWhole) if the stream never
// lost one: its first sequence is 1 (or it is empty) and none was deleted.
// A stream with limits (STREAM_MAX_AGE, STREAM_MAX_BYTES) that dropped its
// oldest events may have been rebuilt from without them, while MongoDB
// keeps them.
func (s *Service) markRecentWhole(ctx context.Context, epoch string) {
	info, err := s.stream.Info(ctx)
	if err != nil || info.State.FirstSeq > 1 || info.State.NumDeleted > 0 {
		return
	}
	if _, err := s.recent.MarkWhole(ctx, epoch); err != nil {
		s.deps.Log.Debug("mark recent cache whole; will retry", "err", err)
	}
}

// consumerInfo is a projection's durable consumer (nil if not created yet).
func (s *Service) consumerInfo(ctx context.Context, name string) (*jetstream.ConsumerInfo, error) {
	cons, err := s.stream.Consumer(ctx, Durable(name))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return cons.Info(ctx)
}

// recentRebuildLoop refills an incomplete cache from the stream, one rebuild
// at a time across projectors (a lease in Redis). Live projection keeps
// running meanwhile; the cache is complete, and used, once the replay has
// reached the stream's last sequence as of the cache's creation.
func (s *Service) recentRebuildLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.recentRebuild:
		}
		if err := s.rebuildRecent(ctx); err != nil && ctx.Err() == nil {
			s.deps.Log.Error("recent cache rebuild failed; will retry", "err", err)
		}
	}
}

func (s *Service) rebuildRecent(ctx context.Context) error {
	epoch, _, err := s.recent.Start(ctx, time.Now())
	if err != nil {
		return err
	}
	if st, err := s.recent.State(ctx); err != nil || st.Complete {
		return err
	}
	if ok, err := s.recent.AcquireLease(ctx, s.owner, rebuildLease); err != nil || !ok {
		return err
	}
	// The master the rebuild writes to: if another holds the cache when it
	// ends, the rebuild's writes may be lost (failover.go).
	master, err := s.recent.CheckMaster(ctx)
	if err != nil {
		return err
	}
	info, err := s.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	start := time.Now()
	n := 0
	if upTo := info.State.LastSeq; upTo > 0 {
		if n, err = s.replayRecent(ctx, upTo); err != nil {
			return err
		}
	}
	done, err := s.recent.MarkCompleteOn(ctx, epoch, master.Replid)
	if err != nil {
		return err
	}
	if !done {
		s.deps.Log.Warn("redis was flushed or failed over during the recent cache rebuild: rebuilding again")
		s.kickRecentRebuild()
		return nil
	}
	s.deps.Log.Info("recent cache rebuilt", "events", n, "upTo", info.State.LastSeq, "took", time.Since(start))
	return nil
}

// replayRecent reads the stream from its start to upTo and adds every event
// to the cache (events already there, or below its floor, are left alone).
// A flush during the replay is noticed by MarkComplete (new epoch).
func (s *Service) replayRecent(ctx context.Context, upTo uint64) (int, error) {
	return s.replay(ctx, streamReplay{
		name: "recent replay",
		upTo: upTo,
		size: 1000,
		apply: func(ctx context.Context, events []schemas.Event) error {
			_, err := s.recent.Apply(ctx, events, time.Now())
			return err
		},
		renew: func(ctx context.Context) (bool, error) {
			return s.recent.AcquireLease(ctx, s.owner, rebuildLease)
		},
	})
}
