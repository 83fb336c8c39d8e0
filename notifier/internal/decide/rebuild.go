package decide

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

// rebuildRetry is the pause after an empty fetch of a rebuild: an empty
// fetch is not the end of the rebuild (a loaded server may answer a pull
// with nothing for a moment), only reaching the sequence it set out to
// reach, or the server having nothing left to deliver, is.
const rebuildRetry = 50 * time.Millisecond

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
	cons, err := c.Events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{schemas.SubjectAll},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &since,
	})
	if err != nil {
		return fmt.Errorf("rebuild windows: %w", err)
	}
	start := time.Now()
	n, err := readUpTo(ctx, cons, info.State.LastSeq, func(ev *schemas.Event) { c.Engine.Observe(ev) })
	if err != nil {
		return fmt.Errorf("rebuild windows: %w", err)
	}
	c.Metrics.Rebuilt.Add(float64(n))
	c.Metrics.Windows.Set(float64(c.Engine.Windows()))
	c.Log.Info("threshold windows rebuilt", "events", n, "windows", c.Engine.Windows(), "since", since, "took", time.Since(start))
	return nil
}

// readUpTo hands every decodable event cons delivers to observe until it
// delivered stream sequence end (or a later one), or the server says
// nothing is left to deliver (the rest was deleted meanwhile), and returns
// how many it observed. An empty fetch alone ends nothing.
func readUpTo(ctx context.Context, cons jetstream.Consumer, end uint64, observe func(*schemas.Event)) (int, error) {
	n := 0
	for {
		batch, err := cons.FetchNoWait(1000)
		if err != nil {
			return n, err
		}
		got := 0
		done := false
		for m := range batch.Messages() {
			got++
			if done {
				continue // past end: drained, not counted
			}
			ev, meta, err := schemas.DecodeMsg(m)
			if err == nil {
				observe(&ev)
				n++
			}
			done = meta != nil && (meta.Sequence.Stream >= end || meta.NumPending == 0)
		}
		if done {
			return n, nil
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return n, err
		}
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if got > 0 {
			continue
		}
		// Nothing came: done only if the server has nothing left to
		// deliver (what was left up to end was deleted meanwhile).
		info, err := cons.Info(ctx)
		if err != nil {
			return n, err
		}
		if info.NumPending == 0 {
			return n, nil
		}
		select { // a pull answered empty while messages are pending: ask again shortly
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(rebuildRetry):
		}
	}
}
