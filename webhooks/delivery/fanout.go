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
const FanoutDurable = "webhooks-fanout"

// fanoutBatch bounds the events fanned out together.
const fanoutBatch = 128

// Fanout queues one job per event and matching endpoint.
type Fanout struct {
	JetStream jetstream.JetStream
	Endpoints *endpoint.Cache
	Log       *slog.Logger
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
	cons, err := f.JetStream.CreateOrUpdateConsumer(ctx, schemas.StreamName, jetstream.ConsumerConfig{
		Durable:       FanoutDurable,
		Description:   "Kiln webhooks: events to queue for the endpoints",
		DeliverPolicy: jetstream.DeliverNewPolicy,
		// One ack per batch: most events match no endpoint, and the fan-out
		// reads every event.
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 4 * fanoutBatch,
		FilterSubject: schemas.SubjectAll,
	})
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("consumer %s: %w", FanoutDurable, err)
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

// fanOut queues the jobs of a batch of events and acks the events once
// every job is stored; on any failure the events come back and their jobs
// are queued again, which the job ids dedupe.
func (f *Fanout) fanOut(ctx context.Context, batch []jetstream.Msg) {
	eps, err := f.Endpoints.All(ctx)
	if err != nil {
		f.Log.Warn("webhooks: load endpoints", "err", err)
		nakAll(batch, time.Second)
		return
	}
	var futures []jetstream.PubAckFuture
	var failed bool
	for _, m := range batch {
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
			job, err := newJob(m, typ, ep.ID, body)
			if err != nil {
				f.Log.Warn("webhooks: event without metadata", "err", err)
				break
			}
			fut, err := f.JetStream.PublishMsgAsync(job)
			if err != nil {
				failed = true
				break
			}
			futures = append(futures, fut)
		}
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, fut := range futures {
		select {
		case <-fut.Ok():
		case err := <-fut.Err():
			f.Log.Warn("webhooks: queue job", "err", err)
			failed = true
		case <-wait.Done():
			failed = true
		}
		if failed {
			break
		}
	}
	if failed {
		nakAll(batch, time.Second)
		return
	}
	// The newest of the batch acknowledges it all.
	var last jetstream.Msg
	var lastSeq uint64
	for _, m := range batch {
		if md, err := m.Metadata(); err == nil && md.Sequence.Consumer >= lastSeq {
			last, lastSeq = m, md.Sequence.Consumer
		}
	}
	if last != nil {
		_ = last.Ack()
	}
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

func newJob(m jetstream.Msg, typ, endpointID string, body []byte) (*nats.Msg, error) {
	md, err := m.Metadata()
	if err != nil {
		return nil, err
	}
	eventID := m.Headers().Get(schemas.HeaderMsgID)
	if eventID == "" {
		return nil, errors.New("no " + schemas.HeaderMsgID)
	}
	j := Job{WebhookID: WebhookID(eventID, endpointID), EndpointID: endpointID, EventID: eventID,
		EventType: typ, Seq: md.Sequence.Stream, Body: body}
	msg, err := j.msg()
	if err == nil {
		// The event's trace context, so the dispatch joins the event's trace.
		telemetry.Inject(telemetry.Extract(context.Background(), m.Headers()), msg.Header)
	}
	return msg, err
}

// msg is the job's stream message.
func (j *Job) msg() (*nats.Msg, error) {
	data, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", j.WebhookID, err)
	}
	msg := nats.NewMsg(Subject(j.EndpointID))
	msg.Data = data
	msg.Header.Set(schemas.HeaderMsgID, j.msgID())
	return msg, nil
}
