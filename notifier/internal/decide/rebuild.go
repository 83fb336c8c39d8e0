package decide

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

// rebuild refills the threshold windows after a restart: it reads the
// events stored since twice the longest window ago (but not before the
// notifier's consumer was created: those were never the notifier's to
// count), up to the stream's end at start-up, with an ordered consumer of
// its own, and only counts them — it decides nothing, so it sends nothing.
//
// Events it counts that the durable consumer had not acked yet come back
// live; a window's counted ids make them count once, and a window that
// crossed its threshold decides on that live delivery. A window that had
// already fired decides again on its next live event, finds its alert
// stored under the same id, and sends nothing new.
func (c *Consumer) rebuild(ctx context.Context, consumerCreated time.Time) error {
	longest := c.Engine.MaxWindow()
	if longest == 0 {
		return nil
	}
	since := time.Now().Add(-2 * longest)
	if consumerCreated.After(since) {
		since = consumerCreated
	}
	info, err := c.Events.Info(ctx)
	if err != nil {
		return fmt.Errorf("rebuild windows: %w", err)
	}
	if info.State.Msgs == 0 || info.State.LastTime.Before(since) {
		return nil
	}
	end := info.State.LastSeq
	cons, err := c.Events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{schemas.SubjectAll},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &since,
	})
	if err != nil {
		return fmt.Errorf("rebuild windows: %w", err)
	}
	start, n := time.Now(), 0
	for {
		batch, err := cons.FetchNoWait(1000)
		if err != nil {
			return fmt.Errorf("rebuild windows: %w", err)
		}
		got, done := 0, false
		for m := range batch.Messages() {
			got++
			ev, meta, err := schemas.DecodeMsg(m)
			if err == nil {
				c.Engine.Observe(&ev)
				n++
			}
			if meta != nil && (meta.Sequence.Stream >= end || meta.NumPending == 0) {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("rebuild windows: %w", err)
		}
		if done || got == 0 || ctx.Err() != nil {
			break
		}
	}
	c.Metrics.Rebuilt.Add(float64(n))
	c.Metrics.Windows.Set(float64(c.Engine.Windows()))
	c.Log.Info("threshold windows rebuilt", "events", n, "windows", c.Engine.Windows(), "since", since, "took", time.Since(start))
	return nil
}
