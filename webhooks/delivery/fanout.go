package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/telemetry"
	"github.com/kilnhq/kiln/webhooks/endpoint"
)

// FanoutDurable is the fan-out consumer on EVENTS. It starts at the events
// published after it was first created: endpoints get what happens from
// then on. A replay of the read models uses consumers of its own and
// publishes nothing, so it never reaches here.
//
// Each event is acked on its own once all its jobs are stored: the
// consumer of earlier versions (legacyFanoutDurable) acked a batch with
// AckAll, which also acked the events of an earlier batch that had failed
// and were waiting to be redelivered, so they were never fanned out.
const FanoutDurable = "webhooks-fanout-2"

// legacyFanoutDurable is the AckAll consumer this one replaces; Run moves
// its position over and deletes it.
const legacyFanoutDurable = "webhooks-fanout"

// fanoutBatch bounds the events fanned out together.
const fanoutBatch = 128

// fanoutWait bounds the wait for a batch's jobs to be stored.
const fanoutWait = 10 * time.Second

// Fanout queues one job per event and matching endpoint.
type Fanout struct {
	JetStream jetstream.JetStream
	Endpoints *endpoint.Cache
	// Deliveries records a job too large for the WEBHOOKS stream as dead.
	Deliveries *Log
	Log        *slog.Logger
}

// Run fans out until ctx is done.
func (f *Fanout) Run(ctx context.Context) error {
	// Ingest creates the stream; in a split deployment this role may start first.
	if _, err := schemas.WaitForStream(ctx, f.JetStream, f.Log); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	cons, err := f.consumer(ctx)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return err
	}
	msgs := make(chan jetstream.Msg, 2*fanoutBatch)
	cc, err := cons.Consume(func(m jetstream.Msg) { msgs <- m }, jetstream.PullMaxMessages(2*fanoutBatch))
	if err != nil {
		return fmt.Errorf("consume %s: %w", FanoutDurable, err)
	}
	defer cc.Stop()
	batch := make([]jetstream.Msg, 0, fanoutBatch)
	for {
		select {
		case <-ctx.Done():
			cc.Stop()
			// Whatever was taken but not fanned out goes back at once.
			for {
				select {
				case m := <-msgs:
					_ = m.Nak()
				default:
					return nil
				}
			}
		case m := <-msgs:
			batch = append(batch[:0], m)
		}
	fill:
		for len(batch) < fanoutBatch {
			select {
			case m := <-msgs:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		f.fanOut(ctx, batch)
	}
}

// consumer creates or updates the fan-out consumer. The first time, a
// deployment that ran the legacy consumer continues after the legacy
// consumer's ack floor (the events after it are queued again; the job ids
// dedupe them), and the legacy consumer is deleted once the new one exists.
func (f *Fanout) consumer(ctx context.Context) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       FanoutDurable,
		Description:   "Kiln webhooks: events to queue for the endpoints",
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 4 * fanoutBatch,
		FilterSubject: schemas.SubjectAll,
	}
	legacy, err := f.JetStream.Consumer(ctx, schemas.StreamName, legacyFanoutDurable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		legacy = nil
	case err != nil:
		return nil, fmt.Errorf("consumer %s: %w", legacyFanoutDurable, err)
	}
	if legacy != nil {
		if _, err := f.JetStream.Consumer(ctx, schemas.StreamName, FanoutDurable); errors.Is(err, jetstream.ErrConsumerNotFound) {
			cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
			cfg.OptStartSeq = legacy.CachedInfo().AckFloor.Stream + 1
		}
	}
	cons, err := f.JetStream.CreateOrUpdateConsumer(ctx, schemas.StreamName, cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", FanoutDurable, err)
	}
	if legacy != nil {
		if err := f.JetStream.DeleteConsumer(ctx, schemas.StreamName, legacyFanoutDurable); err != nil &&
			!errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("delete consumer %s: %w", legacyFanoutDurable, err)
		}
		f.Log.Info("webhooks: fan-out consumer moved to per-event acks", "from", legacyFanoutDurable,
			"to", FanoutDurable, "start", cfg.OptStartSeq)
	}
	return cons, nil
}

// queued is one event of a batch and the jobs queued for it.
type queued struct {
	m      jetstream.Msg
	jobs   []pubJob
	failed bool
}

type pubJob struct {
	job *Job
	fut jetstream.PubAckFuture
}

// fanOut queues the jobs of a batch of events and acks each event once
// every job of it is stored; an event with a job that failed comes back
// and its jobs are queued again, which the job ids dedupe. A job too large
// for the WEBHOOKS stream is recorded as a dead delivery with the reason:
// retrying cannot make it fit.
func (f *Fanout) fanOut(ctx context.Context, batch []jetstream.Msg) {
	eps, err := f.Endpoints.All(ctx)
	if err != nil {
		f.Log.Warn("webhooks: load endpoints", "err", err)
		nakAll(batch, time.Second)
		return
	}
	events := make([]queued, len(batch))
	stalled := false
	for i, m := range batch {
		ev := &events[i]
		ev.m = m
		if stalled {
			ev.failed = true
			continue
		}
		typ, ok := schemas.EventType(m.Subject())
		if !ok {
			continue
		}
		var body []byte
		for _, ep := range eps {
			if ep.Disabled || !ep.Wants(typ) {
				continue
			}
			if body == nil {
				if body, err = eventBody(m, typ); err != nil {
					f.Log.Warn("webhooks: undecodable event, not delivered", "subject", m.Subject(), "err", err)
					break
				}
			}
			job, msg, err := newJob(m, typ, ep.ID, body)
			if err != nil {
				f.Log.Warn("webhooks: event without metadata", "err", err)
				break
			}
			// A batch's jobs outnumber the async-publish window (4,000 by
			// default): when the window is full this waits for the stream's
			// acks, up to fanoutWait, instead of the client's 200 ms, after
			// which a loaded server had the rest of the batch naked and
			// fanned out again.
			fut, err := f.JetStream.PublishMsgAsync(msg, jetstream.WithStallWait(fanoutWait))
			switch {
			case err == nil:
				ev.jobs = append(ev.jobs, pubJob{job: job, fut: fut})
			case tooLarge(err):
				ev.failed = ev.failed || !f.recordTooLarge(ctx, job, len(msg.Data), err)
			default:
				// A full async-publish window: this event and the rest of
				// the batch come back later.
				f.Log.Warn("webhooks: queue job", "id", job.WebhookID, "err", err)
				ev.failed, stalled = true, true
			}
			if stalled {
				break
			}
		}
	}
	wait, cancel := context.WithTimeout(ctx, fanoutWait)
	defer cancel()
	for i := range events {
		ev := &events[i]
		for _, j := range ev.jobs {
			select {
			case <-j.fut.Ok():
			case err := <-j.fut.Err():
				if tooLarge(err) {
					ev.failed = ev.failed || !f.recordTooLarge(ctx, j.job, len(j.fut.Msg().Data), err)
					continue
				}
				f.Log.Warn("webhooks: queue job", "id", j.job.WebhookID, "err", err)
				ev.failed = true
			case <-wait.Done():
				ev.failed = true
			}
		}
		if ev.failed {
			_ = ev.m.NakWithDelay(time.Second)
		} else {
			_ = ev.m.Ack()
		}
	}
}

// tooLarge reports an error that no retry of the same job can fix.
func tooLarge(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, nats.ErrMaxPayload) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum)
}

// recordTooLarge records a job that the WEBHOOKS stream refuses for its
// size as a dead delivery; false if the record failed (the event comes
// back).
func (f *Fanout) recordTooLarge(ctx context.Context, job *Job, size int, cause error) bool {
	reason := fmt.Sprintf("not queued: the job is %d bytes, over the WEBHOOKS stream's message limit (%v)", size, cause)
	e := entry{job: job, status: StatusDead, reason: reason,
		attempt: Attempt{At: time.Now().UnixMilli(), Error: reason}}
	if err := f.Deliveries.record(ctx, e); err != nil {
		f.Log.Warn("webhooks: record oversized job", "id", job.WebhookID, "err", err)
		return false
	}
	f.Log.Warn("webhooks: job too large to queue, recorded as dead", "id", job.WebhookID,
		"endpoint", job.EndpointID, "bytes", size)
	return true
}

func nakAll(batch []jetstream.Msg, delay time.Duration) {
	for _, m := range batch {
		_ = m.NakWithDelay(delay)
	}
}

// eventBody is what an endpoint receives for an event:
// {"type","timestamp" (RFC 3339),"seq","data": the stored event}.
func eventBody(m jetstream.Msg, typ string) ([]byte, error) {
	var ev struct {
		Timestamp int64 `json:"timestamp"`
	}
	if err := json.Unmarshal(m.Data(), &ev); err != nil {
		return nil, err
	}
	md, err := m.Metadata()
	if err != nil {
		return nil, err
	}
	ts, _ := json.Marshal(time.UnixMilli(ev.Timestamp).UTC().Format(time.RFC3339Nano))
	t, _ := json.Marshal(typ)
	out := make([]byte, 0, len(m.Data())+len(typ)+80)
	out = append(append(append(out, `{"type":`...), t...), `,"timestamp":`...)
	out = append(append(out, ts...), `,"seq":`...)
	out = strconv.AppendUint(out, md.Sequence.Stream, 10)
	out = append(append(append(out, `,"data":`...), m.Data()...), '}')
	return out, nil
}

func newJob(m jetstream.Msg, typ, endpointID string, body []byte) (*Job, *nats.Msg, error) {
	md, err := m.Metadata()
	if err != nil {
		return nil, nil, err
	}
	eventID := m.Headers().Get(schemas.HeaderMsgID)
	if eventID == "" {
		return nil, nil, errors.New("no " + schemas.HeaderMsgID)
	}
	j := &Job{WebhookID: WebhookID(eventID, endpointID), EndpointID: endpointID, EventID: eventID,
		EventType: typ, Seq: md.Sequence.Stream, Body: body}
	msg := j.msg()
	// The event's trace context, so the dispatch joins the event's trace.
	telemetry.Inject(telemetry.Extract(context.Background(), m.Headers()), msg.Header)
	return j, msg, nil
}
