package projector

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/projector/internal/streamread"
	"github.com/kilnhq/kiln/schemas"
)

// streamReplay is one rebuild's read of the stream; the rebuilds (the
// counters, the recent-events cache) differ only in what they apply.
type streamReplay struct {
	name string // names the replay in errors
	from uint64 // the first sequence to read (0: the stream's start)
	upTo uint64 // the sequence to reach
	size int    // messages per batch
	// fetch stands between the reader and each read (tests); nil: none.
	fetch streamread.Fetcher
	// apply applies a batch of decoded events.
	apply func(ctx context.Context, events []schemas.Event) error
	// progress, if set, is told after every batch the last sequence read:
	// every sequence up to it is applied.
	progress func(ctx context.Context, pos uint64) error
	// renew renews the rebuild's lease (every rebuildLease/3).
	renew func(ctx context.Context) (bool, error)
}

// replay reads the stream from its start with an ordered consumer (a
// batch or two ahead, see streamread) and applies every event until it has read r.upTo, or the stream holds
// nothing after the last sequence read (the messages up to upTo were
// deleted or aged out). An empty fetch ends nothing by itself: a busy
// server can leave a wait empty, and ending there would claim a rebuild
// that misses events. It returns the number of events applied.
func (s *Service) replay(ctx context.Context, r streamReplay) (int, error) {
	// The next batches are fetched and decoded while this one is applied.
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{schemas.SubjectAll}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if r.from > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, r.from
	}
	rd, err := streamread.Start(ctx, s.stream, streamread.Options{
		Config: cfg,
		Size:   r.size, Wait: time.Second, Fetch: r.fetch,
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", r.name, err)
	}
	defer rd.Stop()
	total, lastRenew := 0, time.Now()
	var pos uint64 // the last sequence read
	for {
		b, err := rd.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			return total, fmt.Errorf("%s: %w", r.name, err)
		}
		if len(b.Events) > 0 {
			if err := r.apply(ctx, b.Events); err != nil {
				return total, err
			}
			total += len(b.Events)
		}
		if b.Last > 0 {
			pos = b.Last
			if r.progress != nil {
				if err := r.progress(ctx, min(pos, r.upTo)); err != nil {
					return total, err
				}
			}
		}
		if pos >= r.upTo || ctx.Err() != nil {
			return total, ctx.Err()
		}
		if b.Last == 0 {
			info, err := s.stream.Info(ctx)
			if err != nil {
				return total, fmt.Errorf("%s: stream info: %w", r.name, err)
			}
			if info.State.Msgs == 0 || info.State.LastSeq <= pos {
				return total, nil
			}
		}
		if time.Since(lastRenew) > rebuildLease/3 {
			if ok, err := r.renew(ctx); err != nil || !ok {
				return total, fmt.Errorf("%s: lost the rebuild lease", r.name)
			}
			lastRenew = time.Now()
		}
	}
}
