// Package delivery runs one channel's deliveries: a durable consumer on
// the ALERTS work queue (alerts.deliver.<channel>) whose jobs are sent,
// recorded, and only then acked. A failed send is retried with exponential
// backoff (or after the Retry-After the receiver asked for) until the last
// attempt, when the job moves to ALERTS_DLQ with its error.
//
// Never twice: before sending, the worker reads the delivery's status and
// acks without sending when it is already sent, so a redelivered job, a
// duplicate job, or a redrive of a delivery sent meanwhile sends nothing.
// Jobs of one delivery are handled one at a time. The one window left is a
// crash after the channel accepted the alert and before "sent" was
// recorded: the job comes back and is sent again. No channel offers an
// idempotency key to close it (email carries a Message-ID derived from the
// alert id, which lets mail clients fold the copy).
package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/notifier/internal/alertstore"
	"github.com/kilnhq/kiln/notifier/internal/channel"
	"github.com/kilnhq/kiln/notifier/internal/jobs"
	"github.com/kilnhq/kiln/notifier/internal/metrics"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/telemetry"
)

// Crash points (see decide.Crash).
const (
	CrashBeforeSend  = "before-send"
	CrashAfterSend   = "after-send" // the unavoidable window: sent, not recorded
	CrashAfterRecord = "after-record"
)

// finishGrace bounds recording a job's outcome after its send.
const finishGrace = 10 * time.Second

// storeTimeout bounds one MongoDB call of a worker.
const storeTimeout = 5 * time.Second

// Defaults of Config's zero fields (the notifier's configuration defaults).
const (
	DefaultMaxAttempts = 10
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = 5 * time.Minute
	DefaultAckWait     = 30 * time.Second
	DefaultSendTimeout = 10 * time.Second
	DefaultConcurrency = 4
)

// Config tunes a worker.
type Config struct {
	MaxAttempts int           // attempts before a job moves to the DLQ
	BackoffBase time.Duration // delay after the first failed attempt, doubling
	BackoffMax  time.Duration // longest delay between attempts
	AckWait     time.Duration // redelivery of a job whose worker died
	SendTimeout time.Duration // bound on one send
	Concurrency int           // jobs in flight per channel
}

// WithDefaults returns c with every zero (or negative) field set to its
// default: a zero Concurrency would start no worker at all and block the
// consumer forever, a zero SendTimeout would fail every send.
func (c Config) WithDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	def(&c.BackoffBase, DefaultBackoffBase)
	def(&c.BackoffMax, DefaultBackoffMax)
	def(&c.AckWait, DefaultAckWait)
	def(&c.SendTimeout, DefaultSendTimeout)
	return c
}

// Worker delivers one channel's jobs.
type Worker struct {
	Name      string // the channel
	Channel   channel.Channel
	JetStream jetstream.JetStream
	Store     *alertstore.Store
	Metrics   *metrics.Notifier
	Log       *slog.Logger
	Config    Config
	Crash     func(point, id string) bool
	// Tracer records a span per delivery attempt, child of the decision
	// that queued the job; nil is no tracing.
	Tracer trace.TracerProvider

	locks keyedMutex
}

// Durable is the consumer name of channel's worker.
func Durable(channel string) string { return "notifier-deliver-" + channel }

// Run delivers until ctx is done.
func (w *Worker) Run(ctx context.Context) error {
	w.Config = w.Config.WithDefaults()
	cons, err := w.JetStream.CreateOrUpdateConsumer(ctx, jobs.Stream, jetstream.ConsumerConfig{
		Durable:       Durable(w.Name),
		Description:   "Kiln notifier: " + w.Name + " deliveries",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.Config.AckWait,
		MaxDeliver:    -1, // the worker moves a job to the DLQ itself, with its error
		MaxAckPending: 256,
		FilterSubject: jobs.Subject(w.Name),
	})
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("consumer %s: %w", Durable(w.Name), err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * w.Config.Concurrency))
	if err != nil {
		return fmt.Errorf("consume %s: %w", Durable(w.Name), err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	msgs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range w.Config.Concurrency {
		wg.Go(func() {
			for m := range msgs {
				w.handle(ctx, m)
			}
		})
	}
	defer wg.Wait()
	defer close(msgs)
	defer it.Stop()
	for {
		m, err := it.Next()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
			errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("consume %s: %w", Durable(w.Name), err) // restart to re-create it
		}
		if err != nil {
			w.Log.Debug("next job", "channel", w.Name, "err", err)
			continue
		}
		msgs <- m
	}
}

// handle delivers one job and settles it.
func (w *Worker) handle(ctx context.Context, m jetstream.Msg) {
	var job jobs.Job
	meta, err := m.Metadata()
	if err == nil {
		err = json.Unmarshal(m.Data(), &job)
	}
	if err != nil || job.Alert.ID == "" || job.Channel != w.Name {
		w.Log.Error("undecodable delivery job skipped", "channel", w.Name, "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	id := job.ID()
	defer w.locks.lock(id)()
	if ctx.Err() != nil {
		return // shutting down: the job comes back
	}
	rctx, cancel := context.WithTimeout(ctx, storeTimeout)
	d, found, err := w.Store.Delivery(rctx, id)
	cancel()
	if err != nil {
		w.retryLater(ctx, m, id, err)
		return
	}
	if !found {
		d = readmodel.Delivery{ID: id, AlertID: job.Alert.ID, Channel: w.Name, Status: readmodel.DeliveryPending}
	}
	if d.Status == readmodel.DeliverySent {
		w.Metrics.Deliveries.WithLabelValues(w.Name, metrics.Skipped).Inc()
		_ = m.Ack()
		return
	}
	if job.Redrive == 0 && d.Status == readmodel.DeliveryDead {
		// A stale copy of a job already moved to the DLQ (redelivered
		// while its first copy was handled): only a redrive sends again.
		w.Metrics.Deliveries.WithLabelValues(w.Name, metrics.Skipped).Inc()
		_ = m.Ack()
		return
	}
	if job.Redrive > 0 && d.Status == readmodel.DeliveryDead {
		d.Redrives++ // the first attempt after an operator's redrive
		d.Tries = 0  // which gets MaxAttempts attempts of its own
	}
	if w.crash(CrashBeforeSend, id) {
		return
	}
	// From here the job finishes even during a graceful shutdown: a send
	// cut off half-way, or a sent alert left unrecorded, is what would be
	// sent twice. Only a crash leaves that window open.
	work, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.Config.SendTimeout+finishGrace)
	defer cancel()
	sendCtx, cancelSend := context.WithTimeout(work, w.Config.SendTimeout)
	sendCtx, span := w.tracer().Start(telemetry.Extract(sendCtx, m.Headers()), "deliver "+w.Name,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("kiln.alert.id", job.Alert.ID), attribute.String("kiln.alert.rule", job.Alert.Rule),
			attribute.Int("kiln.delivery.attempt", d.Tries+1)))
	err = w.Channel.Send(sendCtx, job.Alert)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	cancelSend()
	if err == nil {
		if w.crash(CrashAfterSend, id) {
			return
		}
		w.sent(work, m, job, d)
		return
	}
	w.failed(work, m, job, d, meta.Sequence.Stream, err)
}

// tracer is the worker's tracer (the no-op one when none is set).
func (w *Worker) tracer() trace.Tracer {
	return telemetry.Tracer(w.Tracer, "github.com/kilnhq/kiln/notifier")
}

func (w *Worker) crash(point, id string) bool {
	return w.Crash != nil && w.Crash(point, id)
}

// retryLater naks a job that could not be handled for a reason other than
// its channel (MongoDB unreachable).
func (w *Worker) retryLater(ctx context.Context, m jetstream.Msg, id string, err error) {
	if ctx.Err() != nil {
		return // shutting down: the job comes back
	}
	w.Log.Warn("delivery job retried", "channel", w.Name, "delivery", id, "err", err)
	_ = m.NakWithDelay(w.Config.BackoffBase)
}

// keyedMutex serialises work per key.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	users int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
