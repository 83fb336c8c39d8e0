package baseline

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

// settlePoll is how often Settle looks at the consumers.
const settlePoll = 250 * time.Millisecond

// Backlog sums, over the durable consumers of the EVENTS stream (Kiln's
// projections), the messages not yet delivered and delivered but not yet
// acknowledged. Ephemeral consumers (live watchers) are left out: they may
// never drain.
func (p *Publisher) Backlog(ctx context.Context) (uint64, error) {
	s, err := p.js.Stream(ctx, schemas.StreamName)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", schemas.StreamName, err)
	}
	var total uint64
	list := s.ListConsumers(ctx)
	for ci := range list.Info() {
		if ci.Config.Durable == "" {
			continue
		}
		total += ci.NumPending + uint64(max(ci.NumAckPending, 0))
	}
	if err := list.Err(); err != nil {
		return 0, fmt.Errorf("list consumers of %s: %w", schemas.StreamName, err)
	}
	return total, nil
}

// Settle waits until the projections have caught up (Backlog is 0) or
// limit has passed, so one phase's events are not still being projected,
// and competing for CPU, during the next. It reports whether they caught up.
func (p *Publisher) Settle(ctx context.Context, limit time.Duration, log *slog.Logger) bool {
	deadline := time.Now().Add(limit)
	logged := time.Time{}
	for {
		n, err := p.Backlog(ctx)
		switch {
		case err != nil:
			log.Warn("cannot read the projections' backlog", "err", err)
			return false
		case n == 0:
			return true
		case !time.Now().Before(deadline):
			log.Warn("projections still behind; going on", "backlog", n, "waited", limit)
			return false
		case time.Since(logged) >= 5*time.Second:
			log.Info("waiting for projections to catch up", "backlog", n)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(settlePoll):
		}
	}
}

// PurgeSubject removes every message of subject from the EVENTS stream.
func (p *Publisher) PurgeSubject(ctx context.Context, subject string) error {
	s, err := p.js.Stream(ctx, schemas.StreamName)
	if err == nil {
		err = s.Purge(ctx, jetstream.WithPurgeSubject(subject))
	}
	if err != nil {
		return fmt.Errorf("purge %s: %w", subject, err)
	}
	return nil
}
