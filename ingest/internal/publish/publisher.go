// Package publish appends events to the EVENTS stream and answers only once
// JetStream has acknowledged them. It owns Kiln's idempotency: JetStream's
// Nats-Msg-Id dedupe inside the stream's window, and a durable id ledger
// (a KV bucket) beyond it.
package publish

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/telemetry"
)

// ErrUnavailable wraps every failure that means "JetStream did not confirm
// the write in time": the caller answers 503 and the client retries with the
// same id, which the dedupe turns into a no-op if the write did land.
var ErrUnavailable = errors.New("event store unavailable")

// Event is one validated event ready to append.
type Event struct {
	ID      string
	Subject string
	UserID  string
	Data    []byte
	// ClientID is true when the id came from the client (event id or
	// Idempotency-Key). Only such ids can repeat, so only they are recorded
	// in the durable ledger; server-assigned ULIDs are unique by construction.
	ClientID bool
}

// msg is the stream message of e; its Nats-Msg-Id makes a republish of the
// same event a duplicate inside the dedupe window.
func (e Event) msg() *nats.Msg {
	return &nats.Msg{Subject: e.Subject, Data: e.Data, Header: nats.Header{
		schemas.HeaderMsgID:  {e.ID},
		schemas.HeaderUserID: {e.UserID},
	}}
}

// Result is the outcome of appending one event.
type Result struct {
	Seq       uint64
	Duplicate bool
	Err       error
}

// Publisher appends events to the stream.
type Publisher struct {
	js      jetstream.JetStream
	ledger  *Ledger
	timeout time.Duration
	// resolver settles client-id writes left in doubt by an ack timeout;
	// nil leaves them to the stream's dedupe window alone.
	resolver *Resolver
	// expect makes JetStream refuse a publish that would land outside the
	// EVENTS stream; built once, as it is the same for every message.
	expect jetstream.PublishOpt
}

// NewPublisher returns a Publisher that waits at most timeout for each step
// of one call: the id reservation, the acks, and the ledger settle each get
// a deadline of their own, so a slow reservation cannot turn an acknowledged
// event into a 503 and a settle never runs on an expired context. ledger
// may be nil to rely on the stream's dedupe window alone, and resolver nil
// to leave in-doubt writes to it too.
func NewPublisher(js jetstream.JetStream, ledger *Ledger, resolver *Resolver, timeout time.Duration) *Publisher {
	return &Publisher{js: js, ledger: ledger, resolver: resolver, timeout: timeout, expect: jetstream.WithExpectStream(schemas.StreamName)}
}

// Publish appends the events with asynchronous publishes awaited together and
// returns one Result per event, in order. An event's Result has Err set when
// its write was not confirmed; the others are unaffected. The steps are
// bounded by the publisher's timeout, not by ctx's cancellation: the caller
// deserves the outcome of what was sent.
func (p *Publisher) Publish(ctx context.Context, events []Event) []Result {
	if p.resolver != nil {
		p.resolver.begin()
		defer p.resolver.end()
	}
	ctx = context.WithoutCancel(ctx)
	results := make([]Result, len(events))
	futures := make([]jetstream.PubAckFuture, len(events))
	var c claims
	// Only client ids go through the ledger: a request of server-assigned
	// ids (the common single event) arms no deadline for it.
	useLedger := p.ledger != nil && slices.ContainsFunc(events, func(e Event) bool { return e.ClientID })
	if useLedger {
		lctx, cancel := context.WithTimeout(ctx, p.timeout)
		c = p.ledger.reserve(lctx, events)
		cancel()
		for i, err := range c.failed {
			results[i].Err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	// The append span's context, once, for every message's headers.
	var traceHeader nats.Header
	if trace.SpanContextFromContext(ctx).IsValid() {
		traceHeader = nats.Header{}
		telemetry.Inject(ctx, traceHeader)
	}
	sent := time.Now()
	for i, e := range events {
		if seq, ok := c.known[i]; ok {
			results[i] = Result{Seq: seq, Duplicate: true}
			continue
		}
		if results[i].Err != nil {
			continue
		}
		m := e.msg()
		for k, v := range traceHeader {
			m.Header[k] = v
		}
		f, err := p.js.PublishMsgAsync(m, p.expect)
		if err != nil {
			results[i].Err = fmt.Errorf("%w: publish %s: %v", ErrUnavailable, e.ID, err)
			continue
		}
		futures[i] = f
	}
	p.awaitAcks(events, futures, results, sent)
	if useLedger {
		sctx, cancel := context.WithTimeout(ctx, p.timeout)
		err := p.ledger.settle(sctx, events, results, c)
		cancel()
		// An acked id the ledger did not record is settled by the resolver
		// (a republish inside the window answers the same sequence).
		for _, i := range unsettled(err) {
			p.inDoubt(events[i], sent)
		}
	}
	return results
}

// awaitAcks waits, until the publisher's timeout after sent, for the acks
// of the futures and records them in results. An ack that has arrived is
// always taken, even when the deadline passed at the same moment. One
// timer serves the whole call.
func (p *Publisher) awaitAcks(events []Event, futures []jetstream.PubAckFuture, results []Result, sent time.Time) {
	var timer *time.Timer // armed when a future is first waited for
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	expired := false
	for i, f := range futures {
		if f == nil {
			continue
		}
		var ack *jetstream.PubAck
		var err error
		select { // an outcome already there needs no timer
		case ack = <-f.Ok():
		case err = <-f.Err():
		default:
			if timer == nil {
				timer = time.NewTimer(time.Until(sent.Add(p.timeout)))
			}
			if !expired {
				select {
				case ack = <-f.Ok():
				case err = <-f.Err():
				case <-timer.C:
					expired = true
				}
			}
			if expired && ack == nil && err == nil {
				select { // prefer an outcome that is already there
				case ack = <-f.Ok():
				case err = <-f.Err():
				default:
					results[i].Err = fmt.Errorf("%w: ack %s: %v", ErrUnavailable, events[i].ID, context.DeadlineExceeded)
					p.inDoubt(events[i], sent)
					continue
				}
			}
		}
		if err != nil {
			results[i].Err = fmt.Errorf("%w: ack %s: %v", ErrUnavailable, events[i].ID, err)
			if inDoubtErr(err) {
				p.inDoubt(events[i], sent)
			}
			continue
		}
		results[i] = Result{Seq: ack.Sequence, Duplicate: ack.Duplicate}
	}
}

// inDoubt hands a sent but unconfirmed write to the resolver. A
// server-assigned id is included: the 503 names it to the client for the
// retry, so from then on it is a client id and must be in the ledger for a
// retry after the dedupe window to be a duplicate.
func (p *Publisher) inDoubt(e Event, sent time.Time) {
	if p.resolver != nil && p.ledger != nil {
		e.ClientID = true
		p.resolver.add(e, sent)
	}
}
