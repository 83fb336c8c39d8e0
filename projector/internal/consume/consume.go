// Package consume runs a projection on a durable JetStream pull consumer:
// messages are gathered into batches, applied, and acked only after the
// projection reports the batch durable. Several processes may run the same
// durable consumer; JetStream shares the messages between them.
package consume

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/redelivery"
)

// Projection applies batches of events. Apply must be idempotent: a batch may
// be applied again after a crash, redelivery, or by another process.
type Projection interface {
	Apply(ctx context.Context, events []schemas.Event) error
}

// PoisonRecorder keeps a message that can never be applied, before it is
// terminated, so an operator can inspect it.
type PoisonRecorder interface {
	RecordPoison(ctx context.Context, p Poison) error
}

// Poison is a message given up on.
type Poison struct {
	Seq     uint64
	Subject string
	Data    []byte
	Reason  string
}

// Observer receives what the loop does, for metrics.
type Observer interface {
	Batch(size int, d time.Duration)
	Redelivered(n int)
	Poisoned()
	// StoreError is called for each failed attempt to write to the store.
	StoreError()
	// Stalled is called with true when the loop starts waiting for its
	// store and with false when the store answers again.
	Stalled(bool)
}

// Spec describes one consumer loop.
type Spec struct {
	Stream     jetstream.Stream
	Durable    string
	Projection Projection
	Poison     PoisonRecorder
	Observe    Observer
	Log        *slog.Logger
	// Dependency names the store the projection writes ("mongodb",
	// "redis"), for logs and readiness.
	Dependency string
	// Health, when set, is kept up to date with the loop's store outages.
	Health     *Health
	BatchSize  int
	AckWait    time.Duration
	MaxDeliver int
	// PoisonAfter is the delivery count from which a message that cannot
	// be projected (its error is Unprojectable) is recorded and terminated
	// rather than retried. A store error never makes a message poison.
	PoisonAfter int
	// Backoff bounds the waits between attempts while the store fails
	// (defaults: 100ms growing to 30s).
	MinBackoff, MaxBackoff time.Duration
	// Tracer records a span per batch and per message; nil is no tracing.
	Tracer trace.TracerProvider
}

// ConsumerConfig is the durable consumer a Spec runs on.
func (s Spec) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       s.Durable,
		Description:   "Kiln projector: " + s.Durable,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.AckWait,
		MaxDeliver:    s.MaxDeliver,
		MaxAckPending: 20 * s.BatchSize,
		FilterSubject: schemas.SubjectAll,
	}
}

// Run consumes until ctx is done. On the way out, once pulling has
// stopped, the messages of an unfinished batch and those fetched but not yet
// applied are nak'd, so that another projector gets them at once instead of
// after AckWait (a crash still leaves them to AckWait). Naking only after
// the stop matters: a nak'd message redelivered to this still-subscribed,
// stopping consumer would burn a delivery attempt each time.
func Run(ctx context.Context, s Spec) error {
	if s.Health == nil {
		s.Health = &Health{}
	}
	cfg := s.ConsumerConfig()
	cons, err := s.Stream.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return fmt.Errorf("consumer %s: %w", s.Durable, err)
	}
	// This process pulls one batch ahead of the one it applies and no
	// more (see feed), so a backlog is shared between the processes that
	// run the durable consumer.
	q := newQueue(s.BatchSize)
	fctx, stopFeed := context.WithCancel(ctx)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		s.feed(fctx, cons, q)
	}()
	var unsettled []jetstream.Msg
	defer func() {
		stopFeed()
		<-fed
		for _, m := range unsettled {
			_ = m.Nak()
		}
		for _, m := range q.drain() {
			_ = m.Nak()
		}
	}()
	for {
		batch, ok := q.batch(ctx, s.BatchSize)
		if !ok {
			return nil
		}
		if unsettled = s.handle(ctx, q, batch); unsettled != nil {
			return nil
		}
	}
}

// handle applies one batch and settles every message in it, except when ctx
// ends first: then it returns the messages left unsettled.
func (s Spec) handle(ctx context.Context, q *queue, batch []jetstream.Msg) (unsettled []jetstream.Msg) {
	start := time.Now()
	events := make([]schemas.Event, 0, len(batch))
	msgs := make([]jetstream.Msg, 0, len(batch))
	redelivered := 0
	for i, m := range batch {
		ev, meta, err := schemas.DecodeMsg(m)
		if err != nil {
			if !s.poison(ctx, q, m, meta, err) {
				return append(msgs, batch[i:]...)
			}
			continue
		}
		if meta.NumDelivered > 1 {
			redelivered++
		}
		events = append(events, ev)
		msgs = append(msgs, m)
	}
	if redelivered > 0 {
		s.Observe.Redelivered(redelivered)
	}
	if len(events) == 0 {
		return nil
	}
	bt := s.traceBatch(ctx, msgs)
	err := s.applyUntilStored(ctx, q, msgs, events)
	bt.end(err)
	if ctx.Err() != nil {
		return msgs // shutting down: whatever was written is idempotent; no ack
	}
	if err == nil {
		for _, m := range msgs {
			_ = m.Ack()
		}
		s.Observe.Batch(len(msgs), time.Since(start))
		return nil
	}
	s.Log.Warn("batch holds an event that cannot be projected; applying one by one",
		"consumer", s.Durable, "size", len(msgs), "err", err)
	for i, m := range msgs {
		if !s.single(ctx, q, m, events[i]) {
			return msgs[i:]
		}
	}
	return nil
}

// single applies one event of a batch that held an unprojectable one. It
// returns false when ctx ended before the message was settled.
func (s Spec) single(ctx context.Context, q *queue, m jetstream.Msg, ev schemas.Event) bool {
	err := s.applyUntilStored(ctx, q, []jetstream.Msg{m}, []schemas.Event{ev})
	if ctx.Err() != nil {
		return false
	}
	if err == nil {
		_ = m.Ack()
		return true
	}
	meta, merr := m.Metadata()
	if merr != nil || int(meta.NumDelivered) >= s.PoisonAfter {
		return s.poison(ctx, q, m, meta, err)
	}
	// 2 s after the first delivery, doubling up to 32 s.
	delay := redelivery.Delay(redelivery.Exponential(2*time.Second, 32*time.Second), meta.NumDelivered)
	s.Log.Warn("event cannot be projected; retrying before recording it", "consumer", s.Durable,
		"seq", ev.Seq, "delay", delay, "err", err)
	_ = m.NakWithDelay(delay)
	return true
}

// poison records m and terminates it. Recording is a store write: it is
// retried like any other until it succeeds, so a message is never
// terminated unrecorded. It returns false when ctx ended first.
func (s Spec) poison(ctx context.Context, q *queue, m jetstream.Msg, meta *jetstream.MsgMetadata, cause error) bool {
	p := Poison{Subject: m.Subject(), Data: m.Data(), Reason: cause.Error()}
	if meta != nil {
		p.Seq = meta.Sequence.Stream
	}
	err := s.retryStore(ctx, q, []jetstream.Msg{m}, func(ctx context.Context) error {
		return s.Poison.RecordPoison(ctx, p)
	})
	if err != nil {
		return false
	}
	s.Log.Error("poison message recorded and skipped", "consumer", s.Durable, "seq", p.Seq, "reason", p.Reason)
	s.Observe.Poisoned()
	_ = m.Term()
	return true
}
