package projector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

// streamReplay is one rebuild's read of the stream; the rebuilds (the
// counters, the recent-events cache) differ only in what they apply.
type streamReplay struct {
	name string // names the replay in errors
	upTo uint64 // the sequence to reach
	size int    // messages per fetch
	// fetch is one fetch (tests replace it); nil waits at most a second.
	fetch func(c jetstream.Consumer, n int) (jetstream.MessageBatch, error)
	// apply applies a batch of decoded events.
	apply func(ctx context.Context, events []schemas.Event) error
	// progress, if set, is told after every batch the last sequence read:
	// every sequence up to it is applied.
	progress func(ctx context.Context, pos uint64) error
	// renew renews the rebuild's lease (every rebuildLease/3).
	renew func(ctx context.Context) (bool, error)
}

// replay reads the stream from its start with an ordered consumer and
// applies every event until it has read r.upTo, or the stream holds
// nothing after the last sequence read (the messages up to upTo were
// deleted or aged out). An empty fetch ends nothing by itself: a busy
// server can leave a wait empty, and ending there would claim a rebuild
// that misses events. It returns the number of events applied.
func (s *Service) replay(ctx context.Context, r streamReplay) (int, error) {
	oc, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{schemas.SubjectAll},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return 0, fmt.Errorf("%s: consumer: %w", r.name, err)
	}
	fetch := r.fetch
	if fetch == nil {
		fetch = func(c jetstream.Consumer, n int) (jetstream.MessageBatch, error) {
			return c.Fetch(n, jetstream.FetchMaxWait(time.Second))
		}
	}
	total, lastRenew := 0, time.Now()
	var pos uint64 // the last sequence read
	for {
		batch, err := fetch(oc, r.size)
		if err != nil {
			return total, fmt.Errorf("%s: fetch: %w", r.name, err)
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
		if err := batch.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return total, fmt.Errorf("%s: fetch: %w", r.name, err)
		}
		if len(events) > 0 {
			if err := r.apply(ctx, events); err != nil {
				return total, err
			}
			total += len(events)
		}
		if last > 0 {
			pos = last
			if r.progress != nil {
				if err := r.progress(ctx, min(pos, r.upTo)); err != nil {
					return total, err
				}
			}
		}
		if pos >= r.upTo || ctx.Err() != nil {
			return total, ctx.Err()
		}
		if last == 0 {
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
