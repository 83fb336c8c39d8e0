package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/webhooks/endpoint"
)

// WorkerDurable is the consumer of the WEBHOOKS jobs (webhooks.deliver.>).
// A job waiting for its next attempt is not in its pending set: it is a
// scheduled message on webhooks.retry.>, which the server publishes to the
// job's subject when due (see schedule).
const WorkerDurable = "webhooks-deliver-2"

// legacyWorkerDurable is the consumer of earlier versions, which kept each
// waiting retry in its pending set (NakWithDelay): Run deletes it, and the
// jobs it held, acked by nobody, come to the new consumer at once.
const legacyWorkerDurable = "webhooks-deliver"

// deferDelay is how long a job waits when its endpoint already has
// PerEndpoint requests in flight, doubling with each deferral of the job up
// to maxDeferDelay; it does not count as an attempt. The job waits as a
// scheduled message, like a retry: naked, thousands of jobs of one slow
// endpoint would fill the consumer's pending set and stop every other.
const (
	deferDelay    = 200 * time.Millisecond
	maxDeferDelay = 10 * time.Second
)

// headerDeferrals counts a waiting job's deferrals.
const headerDeferrals = "Kiln-Deferrals"

// defaultMaxRetryAfter caps Retry-After when Config.MaxRetryAfter is 0.
const defaultMaxRetryAfter = time.Hour

// Config tunes the workers.
type Config struct {
	// Schedule is the delay after each failed attempt; its length is the
	// number of retries (attempts = len+1).
	Schedule []time.Duration
	// DisableAfter disables an endpoint whose deliveries have failed
	// continuously this long.
	DisableAfter time.Duration
	// Concurrency is the requests in flight in all; PerEndpoint to one
	// endpoint, so a slow endpoint holds at most that many workers.
	Concurrency int
	PerEndpoint int
	// AckWait is how long a job taken by a worker that died stays away.
	AckWait time.Duration
	// MaxRetryAfter caps the wait a receiver's Retry-After asks for (0:
	// an hour).
	MaxRetryAfter time.Duration
}

// Worker sends jobs.
type Worker struct {
	JetStream jetstream.JetStream
	Endpoints *endpoint.Cache
	Store     *endpoint.Store
	Log       *Log
	Sender    *Sender
	Config    Config
	Logger    *slog.Logger
	// Tracer records a span per delivery attempt, in the event's trace;
	// nil is no tracing.
	Tracer trace.TracerProvider

	mu       sync.Mutex
	inFlight map[string]int
	failing  map[string]int64 // endpoint → start of its failing run, Unix ms
}

// Run delivers until ctx is done; in-flight requests finish first.
func (w *Worker) Run(ctx context.Context) error {
	w.inFlight, w.failing = map[string]int{}, map[string]int64{}
	if err := w.JetStream.DeleteConsumer(ctx, Stream, legacyWorkerDurable); err == nil {
		w.Logger.Info("webhooks: deleted the legacy delivery consumer; its waiting jobs are due now",
			"consumer", legacyWorkerDurable)
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) && ctx.Err() == nil {
		return fmt.Errorf("delete consumer %s: %w", legacyWorkerDurable, err)
	}
	cons, err := w.JetStream.CreateOrUpdateConsumer(ctx, Stream, jetstream.ConsumerConfig{
		Durable:       WorkerDurable,
		Description:   "Kiln webhooks: deliveries",
		FilterSubject: SubjectPrefix + ">",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.Config.AckWait,
		MaxDeliver:    -1, // the worker ends a job itself: delivered, dead, or dropped
		MaxAckPending: 4 * w.Config.Concurrency,
	})
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("consumer %s: %w", WorkerDurable, err)
	}
	// Room for a full bulk write of successes, which no worker waits for:
	// a queue of Concurrency made workers wait for the log to catch up
	// and kept its bulk writes small.
	wr := newWriter(w.Log, max(w.Config.Concurrency, maxWriteBatch))
	wctx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	var writerDone sync.WaitGroup
	writerDone.Go(func() { wr.run(wctx) })
	defer func() { stopWriter(); writerDone.Wait() }()

	msgs := make(chan jetstream.Msg)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-ctx.Done():
			_ = m.Nak()
		}
	}, jetstream.PullMaxMessages(2*w.Config.Concurrency))
	if err != nil {
		return fmt.Errorf("consume %s: %w", WorkerDurable, err)
	}
	var wg sync.WaitGroup
	for range w.Config.Concurrency {
		wg.Go(func() {
			for {
				select {
				case m := <-msgs:
					w.handle(ctx, wr, m)
				case <-ctx.Done():
					return
				}
			}
		})
	}
	<-ctx.Done()
	cc.Stop()
	wg.Wait()
	return nil
}

// handle runs one job; requests in flight are not cut by shutdown.
func (w *Worker) handle(ctx context.Context, wr *writer, m jetstream.Msg) {
	ctx = context.WithoutCancel(ctx)
	job, err := decodeJob(m.Headers(), m.Data())
	if err != nil {
		w.Logger.Error("webhooks: undecodable job dropped", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	ep, err := w.endpoint(ctx, job.EndpointID)
	if err != nil {
		_ = m.NakWithDelay(time.Second)
		return
	}
	if ep == nil { // deleted: nothing to deliver to
		w.finish(ctx, wr, m, entry{job: &job, status: StatusDead, reason: "endpoint deleted",
			attempt: Attempt{At: time.Now().UnixMilli(), Error: "not sent: the endpoint was deleted"}})
		return
	}
	if ep.Disabled {
		w.finish(ctx, wr, m, entry{job: &job, status: StatusDead, reason: "endpoint disabled: " + ep.DisabledReason,
			attempt: Attempt{At: time.Now().UnixMilli(), Error: "not sent: the endpoint is disabled"}})
		return
	}
	if !w.acquire(ep.ID) {
		w.deferJob(ctx, m, &job)
		return
	}
	defer w.release(ep.ID)
	prior, fresh := 0, job.Redrive == 0
	// A retry comes from its schedule (Nats-Scheduler names it).
	if md, err := m.Metadata(); err != nil || md.NumDelivered > 1 || !fresh || m.Headers().Get(headerScheduler) != "" {
		fresh = false
		if prior, err = w.Log.AttemptCount(ctx, job.WebhookID); err != nil {
			_ = m.NakWithDelay(time.Second)
			return
		}
	}
	a := w.send(ctx, m, ep, &job, prior+1)
	e := entry{job: &job, attempt: a, first: fresh && prior == 0}
	n := prior - job.Redrive + 1 // attempts in this run of the schedule
	switch {
	case a.OK():
		// Delivered: ack at once; the log records it shortly after (a
		// crash in between loses the log line, never the delivery).
		e.status = StatusSucceeded
		w.succeeded(ctx, ep)
		_ = m.Ack()
		wr.submit(e)
		return
	case a.Status == http.StatusGone:
		e.status, e.reason = StatusDead, "the endpoint answered 410 Gone and was disabled"
		w.disable(ctx, ep.ID, "answered 410 Gone")
	default:
		since := w.failed(ctx, ep)
		switch {
		case time.Since(time.UnixMilli(since)) >= w.Config.DisableAfter:
			reason := fmt.Sprintf("deliveries failing continuously since %s (more than %s)",
				time.UnixMilli(since).UTC().Format(time.RFC3339), w.Config.DisableAfter)
			e.status, e.reason = StatusDead, "the endpoint was disabled: "+reason
			w.disable(ctx, ep.ID, reason)
		case n > len(w.Config.Schedule):
			e.status, e.reason = StatusDead, fmt.Sprintf("no success after %d attempts", n)
		default:
			delay := w.Config.Schedule[n-1]
			if a.retryAfter > 0 {
				delay = min(a.retryAfter, cmp.Or(w.Config.MaxRetryAfter, defaultMaxRetryAfter))
			}
			due := time.Now().Add(delay)
			e.status, e.next = StatusRetrying, due.UnixMilli()
			if err := wr.write(ctx, e); err != nil {
				w.Logger.Warn("webhooks: record attempt", "id", job.WebhookID, "err", err)
			}
			w.retryAt(ctx, m, &job, due)
			return
		}
	}
	w.finish(ctx, wr, m, e)
}

// retryAt schedules the job's next attempt at due and acks this one, so a
// waiting job holds no place in the consumer's pending set; if the
// schedule cannot be stored, the job waits as a nak instead.
func (w *Worker) retryAt(ctx context.Context, m jetstream.Msg, job *Job, due time.Time) {
	if err := schedule(ctx, w.JetStream, m, job, due, 0); err != nil {
		w.Logger.Warn("webhooks: schedule retry", "id", job.WebhookID, "err", err)
		_ = m.NakWithDelay(time.Until(due))
		return
	}
	_ = m.Ack()
}

// deferJob puts back a job whose endpoint has its requests in flight, as
// a scheduled message, and acks this one.
func (w *Worker) deferJob(ctx context.Context, m jetstream.Msg, job *Job) {
	n, _ := strconv.Atoi(m.Headers().Get(headerDeferrals))
	delay := min(deferDelay<<min(max(n, 0), 10), maxDeferDelay)
	if err := schedule(ctx, w.JetStream, m, job, time.Now().Add(delay), n+1); err != nil {
		w.Logger.Warn("webhooks: defer job", "id", job.WebhookID, "err", err)
		_ = m.NakWithDelay(delay)
		return
	}
	_ = m.Ack()
}

// finish records a final outcome, then acks; a failed record brings the
// job back.
func (w *Worker) finish(ctx context.Context, wr *writer, m jetstream.Msg, e entry) {
	if err := wr.write(ctx, e); err != nil {
		w.Logger.Warn("webhooks: record delivery", "id", e.job.WebhookID, "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	_ = m.Ack()
}

func (w *Worker) endpoint(ctx context.Context, id string) (*endpoint.Endpoint, error) {
	ep, err := w.Endpoints.Get(ctx, id)
	if err != nil || ep != nil {
		return ep, err
	}
	w.Endpoints.Invalidate() // created by another process since the last load?
	return w.Endpoints.Get(ctx, id)
}

func (w *Worker) acquire(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inFlight[id] >= w.Config.PerEndpoint {
		return false
	}
	w.inFlight[id]++
	return true
}

func (w *Worker) release(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inFlight[id]--; w.inFlight[id] <= 0 {
		delete(w.inFlight, id)
	}
}

// succeeded ends the endpoint's failing run.
func (w *Worker) succeeded(ctx context.Context, ep *endpoint.Endpoint) {
	w.mu.Lock()
	since := w.failing[ep.ID]
	delete(w.failing, ep.ID)
	w.mu.Unlock()
	if since == 0 && ep.FailingSince == 0 {
		return
	}
	if err := w.Store.SetFailingSince(ctx, ep.ID, 0); err != nil {
		w.Logger.Warn("webhooks: record endpoint health", "endpoint", ep.ID, "err", err)
	}
	w.Endpoints.Invalidate()
}

// failed returns the start of the endpoint's failing run, starting one.
// A run begun before the endpoint's last change (re-enabled, edited) does
// not count.
func (w *Worker) failed(ctx context.Context, ep *endpoint.Endpoint) int64 {
	if ep.FailingSince != 0 {
		return ep.FailingSince
	}
	now := time.Now().UnixMilli()
	w.mu.Lock()
	since := w.failing[ep.ID]
	if since == 0 || since < ep.UpdatedAt {
		since = now
		w.failing[ep.ID] = now
	}
	w.mu.Unlock()
	if since == now {
		if err := w.Store.SetFailingSince(ctx, ep.ID, since); err != nil {
			w.Logger.Warn("webhooks: record endpoint health", "endpoint", ep.ID, "err", err)
		}
		w.Endpoints.Invalidate()
	}
	return since
}

func (w *Worker) disable(ctx context.Context, id, reason string) {
	if err := w.Store.Disable(ctx, id, reason); err != nil {
		w.Logger.Warn("webhooks: disable endpoint", "endpoint", id, "err", err)
	}
	w.Endpoints.Invalidate()
	w.Logger.Warn("webhooks: endpoint disabled", "endpoint", id, "reason", reason)
}
