package publish

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

// An in-doubt write is a client-id event whose publish was sent but not
// acknowledged in time: the client got a 503 and may retry, but the event
// may already be in the stream. Inside the stream's dedupe window a retry is
// harmless (same Nats-Msg-Id); after it, only the id ledger can tell. The
// Resolver closes that gap: it republishes each in-doubt event with its
// Nats-Msg-Id while the window still covers the first attempt — JetStream
// answers with the original sequence if the first write landed, or stores
// the event now — and records the id in the ledger. A client retry after
// the window then finds the ledger entry and gets duplicate:true.
//
// What remains: the ingest process dying, or JetStream staying unreachable
// for longer than the window, while writes are in doubt (counted in
// kiln_ingest_in_doubt_total{outcome="unresolved"}).
type Resolver struct {
	js     jetstream.JetStream
	ledger *Ledger
	// within is how long after the first attempt republishing is safe:
	// most of the dedupe window, leaving room for the republish itself.
	within  time.Duration
	queue   chan inDoubt
	expect  jetstream.PublishOpt
	log     *slog.Logger
	outcome func(string) // counts resolved/unresolved/dropped
	// inflight counts Publish calls under way: at shutdown the resolver
	// keeps working until they are done (the HTTP server drained), as they
	// may still leave writes in doubt.
	inflight atomic.Int64
	// pending counts in-doubt writes added and not yet settled (queued or
	// being resolved): counted before the queue send and after the resolve,
	// so no moment between the two looks idle to drain.
	pending atomic.Int64
}

type inDoubt struct {
	ev   Event
	sent time.Time
}

// resolverQueue bounds the in-doubt writes waiting; beyond it they are
// dropped (and counted), as the stream is then clearly in trouble.
const resolverQueue = 16384

// NewResolver returns a Resolver for a stream whose dedupe window is
// window. outcome, if not nil, is called with "resolved", "unresolved" or
// "dropped" per in-doubt event.
func NewResolver(js jetstream.JetStream, ledger *Ledger, window time.Duration, log *slog.Logger, outcome func(string)) *Resolver {
	if outcome == nil {
		outcome = func(string) {}
	}
	return &Resolver{
		js: js, ledger: ledger, within: window * 3 / 4, log: log, outcome: outcome,
		queue:  make(chan inDoubt, resolverQueue),
		expect: jetstream.WithExpectStream(schemas.StreamName),
	}
}

// inDoubtErr reports whether an ack failure leaves the write in doubt: a
// timeout or a lost connection may hide a stored event, while "no
// responders" or an API error means JetStream did not store it.
func inDoubtErr(err error) bool {
	var apiErr *jetstream.APIError
	return !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.As(err, &apiErr)
}

// add queues an in-doubt event without blocking.
func (r *Resolver) add(ev Event, sent time.Time) {
	r.pending.Add(1)
	select {
	case r.queue <- inDoubt{ev, sent}:
	default:
		r.pending.Add(-1)
		r.outcome("dropped")
		r.log.Warn("in-doubt write not queued for resolution: queue full", "id", ev.ID)
	}
}

// resolverWorkers is how many in-doubt writes are republished at once: a
// burst of timeouts (a slow disk, a leader change) leaves thousands in
// doubt, each of which must be settled before the dedupe window passes.
const resolverWorkers = 32

// drainTimeout bounds how long Run, after its context ended, waits for the
// publishes in flight and the queue; what is left is counted unresolved.
const drainTimeout = 15 * time.Second

// begin and end bracket a Publish call.
func (r *Resolver) begin() { r.inflight.Add(1) }
func (r *Resolver) end()   { r.inflight.Add(-1) }

// Run resolves queued in-doubt writes until ctx ends, then until the
// publishes in flight have returned and the queue is empty (at most
// drainTimeout): ingest's HTTP server drains its requests after ctx ends,
// and their in-doubt writes must still be settled.
func (r *Resolver) Run(ctx context.Context) error {
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	var wg sync.WaitGroup
	for range resolverWorkers {
		wg.Go(func() {
			for {
				select {
				case <-wctx.Done():
					return
				case d := <-r.queue:
					r.resolve(wctx, d)
					r.pending.Add(-1)
				}
			}
		})
	}
	<-ctx.Done()
	r.drain()
	stop()
	wg.Wait()
	for {
		select {
		case d := <-r.queue:
			r.pending.Add(-1)
			r.outcome("unresolved")
			r.log.Error("in-doubt write unresolved at shutdown: a retry after the dedupe window may store the event twice",
				"id", d.ev.ID, "sentAt", d.sent)
		default:
			return nil
		}
	}
}

// drain waits until no publish is in flight and every in-doubt write is
// settled, or drainTimeout passed.
func (r *Resolver) drain() {
	deadline := time.Now().Add(drainTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if r.inflight.Load() == 0 && r.pending.Load() == 0 {
			return
		}
		<-tick.C
	}
}

func (r *Resolver) resolve(ctx context.Context, d inDoubt) {
	deadline := d.sent.Add(r.within)
	msg := d.ev.msg()
	attempt := func() (struct{}, error) {
		actx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		ack, err := r.js.PublishMsg(actx, msg, r.expect)
		if err != nil {
			return struct{}{}, err
		}
		results := []Result{{Seq: ack.Sequence, Duplicate: ack.Duplicate}}
		if err := r.ledger.settle(actx, []Event{d.ev}, results, claims{}); err != nil {
			r.log.Warn("in-doubt write stored but its id not recorded; retrying", "id", d.ev.ID, "err", err)
			return struct{}{}, err
		}
		return struct{}{}, nil
	}
	// 100 ms doubling to 2 s between attempts, until the dedupe window ends.
	policy := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: 2 * time.Second}
	err := errors.New("the dedupe window had ended")
	if left := time.Until(deadline); left > 0 {
		_, err = backoff.Retry(ctx, attempt, backoff.WithBackOff(policy), backoff.WithMaxElapsedTime(left))
	}
	switch {
	case err == nil:
		r.outcome("resolved")
	case ctx.Err() != nil: // the drain timed out at shutdown
		r.outcome("unresolved")
		r.log.Error("in-doubt write unresolved at shutdown: a retry after the dedupe window may store the event twice",
			"id", d.ev.ID, "sentAt", d.sent)
	default:
		r.outcome("unresolved")
		r.log.Error("in-doubt write unresolved within the dedupe window: a retry after it may store the event twice",
			"id", d.ev.ID, "sentAt", d.sent, "err", err)
	}
}
