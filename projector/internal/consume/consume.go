// Package consume runs a projection on a durable JetStream pull consumer:
// messages are gathered into batches, applied, and acked only after the
// projection reports the batch durable. Several processes may run the same
// durable consumer; JetStream shares the messages between them.
package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
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
}

// Spec describes one consumer loop.
type Spec struct {
	Stream     jetstream.Stream
	Durable    string
	Projection Projection
	Poison     PoisonRecorder
	Observe    Observer
	Log        *slog.Logger
	BatchSize  int
	AckWait    time.Duration
	MaxDeliver int
	// PoisonAfter is the delivery count from which a message that fails on
	// its own is recorded and terminated rather than retried.
	PoisonAfter int
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

// Run consumes until ctx is done. On the way out, once the subscription is
// stopped, the messages of an unfinished batch and those fetched but not yet
// applied are nak'd, so that another projector gets them at once instead of
// after AckWait (a crash still leaves them to AckWait). Naking only after
// the stop matters: a nak'd message redelivered to this still-subscribed,
// stopping consumer would burn a delivery attempt each time.
func Run(ctx context.Context, s Spec) error {
	cons, err := s.Stream.CreateOrUpdateConsumer(ctx, s.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("consumer %s: %w", s.Durable, err)
	}
	msgs := make(chan jetstream.Msg, 2*s.BatchSize)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(2*s.BatchSize), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if !errors.Is(err, jetstream.ErrNoHeartbeat) {
			s.Log.Debug("consume", "consumer", s.Durable, "err", err)
		}
	}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", s.Durable, err)
	}
	var unsettled []jetstream.Msg
	defer func() {
		cc.Stop()
		for _, m := range unsettled {
			_ = m.Nak()
		}
		for {
			select {
			case m := <-msgs:
				_ = m.Nak()
			default:
				return
			}
		}
	}()
	batch := make([]jetstream.Msg, 0, s.BatchSize)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			batch = append(batch, m)
		}
	drain:
		for len(batch) < s.BatchSize {
			select {
			case m := <-msgs:
				batch = append(batch, m)
			default:
				break drain
			}
		}
		if unsettled = s.handle(ctx, batch); unsettled != nil {
			return nil
		}
	}
}

// handle applies one batch and settles every message in it, except when ctx
// ends first: then it returns the messages left unsettled.
func (s Spec) handle(ctx context.Context, batch []jetstream.Msg) (unsettled []jetstream.Msg) {
	start := time.Now()
	events := make([]schemas.Event, 0, len(batch))
	msgs := make([]jetstream.Msg, 0, len(batch))
	redelivered := 0
	for _, m := range batch {
		ev, meta, err := schemas.DecodeMsg(m)
		if err != nil {
			s.poison(ctx, m, meta, err)
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
	err := ApplyWithRetry(ctx, s.Projection, events)
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
	s.Log.Warn("batch failed, applying one by one", "consumer", s.Durable, "size", len(msgs), "err", err)
	for i, m := range msgs {
		s.single(ctx, m, events[i])
	}
	return nil
}

// Batch retries: a store may refuse a write for a moment (FerretDB's SQLite
// answers SQLITE_BUSY to concurrent writers), so a failed batch is retried
// whole a few times before its events are isolated one by one.
const (
	batchAttempts = 4
	batchBackoff  = 50 * time.Millisecond
)

// ApplyWithRetry applies events, retrying a failed write with backoff. Every
// projection is idempotent, so a retry after a partial write is safe.
func ApplyWithRetry(ctx context.Context, p Projection, events []schemas.Event) error {
	var err error
	for attempt := range batchAttempts {
		if err = p.Apply(ctx, events); err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(batchBackoff << (2 * attempt)):
		}
	}
	return err
}

// single applies one event of a failed batch, isolating a poison message.
func (s Spec) single(ctx context.Context, m jetstream.Msg, ev schemas.Event) {
	err := s.Projection.Apply(ctx, []schemas.Event{ev})
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		_ = m.Ack()
		return
	}
	meta, merr := m.Metadata()
	if merr != nil || int(meta.NumDelivered) >= s.PoisonAfter {
		s.poison(ctx, m, meta, err)
		return
	}
	delay := time.Duration(1) << min(uint64(meta.NumDelivered), 5) * time.Second
	s.Log.Warn("event failed, retrying", "consumer", s.Durable, "seq", ev.Seq, "delay", delay, "err", err)
	_ = m.NakWithDelay(delay)
}

// poison records m and terminates it. If recording fails the message is
// left unacked, to come back rather than vanish unrecorded.
func (s Spec) poison(ctx context.Context, m jetstream.Msg, meta *jetstream.MsgMetadata, cause error) {
	p := Poison{Subject: m.Subject(), Data: m.Data(), Reason: cause.Error()}
	if meta != nil {
		p.Seq = meta.Sequence.Stream
	}
	if err := s.Poison.RecordPoison(ctx, p); err != nil {
		s.Log.Error("cannot record poison message", "consumer", s.Durable, "seq", p.Seq, "err", err)
		return
	}
	s.Log.Error("poison message recorded and skipped", "consumer", s.Durable, "seq", p.Seq, "reason", p.Reason)
	s.Observe.Poisoned()
	_ = m.Term()
}
