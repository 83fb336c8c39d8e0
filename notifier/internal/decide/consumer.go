// Package decide is the notifier's event consumer. It reads the EVENTS
// stream through its own durable consumer, which starts at the events
// stored after it was created (a new notifier never alerts on history),
// evaluates every event, stores each decided alert once, queues its
// deliveries, and only then acks the event. Replays and rebuilds of the
// read models use ordered consumers of their own and never reach it.
package decide

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/notifier/internal/alertstore"
	"github.com/kilnhq/kiln/notifier/internal/evaluate"
	"github.com/kilnhq/kiln/notifier/internal/metrics"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/redelivery"
)

// Durable is the notifier's consumer on EVENTS.
const Durable = "notifier"

// pruneEvery is how often old threshold windows are dropped.
const pruneEvery = 10 * time.Second

// Crash lets tests stop the consumer at a named point, as a crash would:
// when it returns true the message is left unacked.
type Crash func(point, id string) bool

// Consumer decides alerts from live events.
type Consumer struct {
	Events    jetstream.Stream
	JetStream jetstream.JetStream
	Store     *alertstore.Store
	Engine    *evaluate.Engine
	Metrics   *metrics.Notifier
	Log       *slog.Logger
	AckWait   time.Duration
	Crash     Crash
	// Tracer records a span per evaluated event, child of its append
	// span, and one per decided alert; nil is no tracing.
	Tracer trace.TracerProvider

	lastPrune time.Time
	decisions []evaluate.Decision
}

// ConsumerConfig is the durable consumer the notifier reads events with.
func (c *Consumer) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       Durable,
		Description:   "Kiln notifier: live events to evaluate against the alert rules",
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    -1, // an event is retried until its alerts are stored, never dropped
		MaxAckPending: 1000,
		FilterSubject: schemas.SubjectAll,
	}
}

// Run consumes until ctx is done. A notifier whose consumer existed before
// first rebuilds its threshold windows from the recent stream.
func (c *Consumer) Run(ctx context.Context) error {
	if err := c.run(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

func (c *Consumer) run(ctx context.Context) error {
	existing, err := c.Events.Consumer(ctx, Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
	case err != nil:
		return fmt.Errorf("consumer %s: %w", Durable, err)
	default:
		if err := c.rebuild(ctx, existing.CachedInfo().Created); err != nil {
			return err
		}
	}
	cons, err := c.Events.CreateOrUpdateConsumer(ctx, c.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("consumer %s: %w", Durable, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(500))
	if err != nil {
		return fmt.Errorf("consume %s: %w", Durable, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	c.lastPrune = time.Now()
	for {
		m, err := it.Next()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
			errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("consume %s: %w", Durable, err) // restart to re-create it
		}
		if err != nil {
			c.Log.Debug("next event", "err", err)
			continue
		}
		c.handle(ctx, m)
		if time.Since(c.lastPrune) > pruneEvery {
			c.Engine.Prune(time.Now())
			c.Metrics.Windows.Set(float64(c.Engine.Windows()))
			c.lastPrune = time.Now()
		}
	}
}

// handle evaluates one event and settles it: acked once every alert it
// decided is stored and queued, retried with backoff when that failed.
func (c *Consumer) handle(ctx context.Context, m jetstream.Msg) {
	ev, meta, err := schemas.DecodeMsg(m)
	if err != nil {
		c.Log.Error("undecodable event skipped", "subject", m.Subject(), "err", err)
		c.Metrics.Poison.Inc()
		_ = m.Term()
		return
	}
	c.decisions = c.Engine.Evaluate(&ev, c.decisions[:0])
	ctx, span := c.traceEvaluate(ctx, m, &ev, len(c.decisions))
	defer span.End()
	for _, d := range c.decisions {
		err := c.traceDecide(ctx, &ev, d)
		if ctx.Err() != nil || errors.Is(err, errCrashed) {
			return // shutting down: the event comes back; its alerts are stored once
		}
		if err != nil {
			// 2 s after the first delivery, doubling up to a minute.
			delay := redelivery.Delay(redelivery.Exponential(2*time.Second, time.Minute), meta.NumDelivered)
			c.Log.Warn("cannot store alert, event retried", "rule", d.Rule.Name, "eventId", ev.ID, "delay", delay, "err", err)
			_ = m.NakWithDelay(delay)
			return
		}
		c.Engine.MarkDecided(d)
	}
	_ = m.Ack()
	c.Metrics.Evaluated.Inc()
}
