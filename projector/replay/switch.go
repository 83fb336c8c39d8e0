package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// liveConsumer names the live projector's durable consumer for a projection.
func liveConsumer(projection string) string { return "projector-" + projection }

// switchLive points readers and the live projector at the shadow. The live
// projector resolves the generation at the start of each batch, so only
// messages it was delivered before the switch can still land in the old
// generation; the returned seam is the highest of those sequences, and the
// replay keeps tailing until the shadow holds everything up to it.
func (r *run) switchLive(ctx context.Context) (uint64, error) {
	dropAfter := time.Now().Add(r.opts.Grace)
	if err := r.target.switchTo(ctx, r.p.NewGeneration, r.p.LiveGeneration, r.st.Position, dropAfter); err != nil {
		return 0, err
	}
	r.deps.Log.Info("switched to the rebuilt generation", "projection", r.name,
		"generation", r.p.NewGeneration, "previous", r.p.LiveGeneration, "at", r.st.Position)
	seam := r.st.Position
	for _, name := range liveConsumers(r.name) {
		cons, err := r.stream.Consumer(ctx, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue // no live projector has run
		}
		if err != nil {
			return 0, fmt.Errorf("live consumer: %w", err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("live consumer: %w", err)
		}
		seam = max(seam, info.Delivered.Stream)
	}
	return seam, nil
}

// liveConsumers are the live consumers writing a projection's generation:
// the Redis generation holds the counters and the recent-events cache.
func liveConsumers(projection string) []string {
	if projection == Counters {
		return []string{liveConsumer(Counters), liveConsumer("recent")}
	}
	return []string{liveConsumer(projection)}
}

// dropPrevious waits out the grace period (for reads that resolved the old
// generation just before the switch), then drops the old generation.
// Cancelling cuts the wait short; the drop still happens.
func (r *run) dropPrevious(ctx context.Context) error {
	if r.p.LiveGeneration == r.p.NewGeneration {
		return nil
	}
	select {
	case <-ctx.Done():
	case <-time.After(r.opts.Grace):
	}
	if err := r.target.drop(context.WithoutCancel(ctx), r.p.LiveGeneration); err != nil {
		return fmt.Errorf("drop generation %d: %w", r.p.LiveGeneration, err)
	}
	r.deps.Log.Info("dropped the previous generation", "projection", r.name, "generation", r.p.LiveGeneration)
	return nil
}
