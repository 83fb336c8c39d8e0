// Package deadletter records the events ingest refuses or quarantines in
// the REJECTIONS stream (schemas/rejections) without slowing valid
// requests: refusals are recorded best effort, quarantined events are
// confirmed before they are answered as kept.
package deadletter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/kilnhq/kiln/schemas/rejections"
)

// maxPending bounds the records in flight: beyond it a refusal's record is
// dropped (and counted), never waited for.
const maxPending = 4096

// Bounds on what a flood of refused requests (garbage that is not even
// JSON, or huge invalid events) can cost. The REJECTIONS stream itself is
// bounded (REJECTIONS_MAX_BYTES, REJECTIONS_MAX_AGE, oldest dropped).
const (
	// smallRecord is the size up to which a noted record is bounded by
	// maxPending alone (at most maxPending*smallRecord bytes in flight).
	smallRecord = 4 << 10
	// maxPendingLarge bounds the bytes of larger noted records in flight:
	// beyond it their records are dropped (and counted).
	maxPendingLarge = 64 << 20
	// unrecoverableRate and unrecoverableBurst bound the bytes per second
	// of records recover cannot use (malformed bodies): a flood of garbage
	// is sampled, and cannot push the quarantined events, which wait for
	// recover, out of the stream within minutes.
	unrecoverableRate  = 1 << 20
	unrecoverableBurst = 4 << 20
)

// Recorder publishes records to the REJECTIONS stream.
type Recorder struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	timeout time.Duration
	// failed counts records not stored, by outcome.
	failed func(outcome rejections.Outcome)
	expect jetstream.PublishOpt
	// largePending is the bytes of noted records over smallRecord in flight.
	largePending atomic.Int64
	// unrecoverable limits the bytes of unrecoverable records.
	unrecoverable *rate.Limiter
}

// New returns a Recorder publishing on nc; each Keep waits at most timeout.
func New(nc *nats.Conn, timeout time.Duration, failed func(rejections.Outcome)) (*Recorder, error) {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncTimeout(timeout),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, _ error) {
			if m.Header.Get(rejections.Header) != "" {
				failed(outcomeOf(m))
			}
		}))
	if err != nil {
		return nil, fmt.Errorf("rejections: jetstream: %w", err)
	}
	return &Recorder{nc: nc, js: js, timeout: timeout, failed: failed, expect: jetstream.WithExpectStream(rejections.StreamName),
		unrecoverable: rate.NewLimiter(unrecoverableRate, unrecoverableBurst)}, nil
}

// outcomeOf is the outcome a record message carries (for the metric only).
func outcomeOf(m *nats.Msg) rejections.Outcome {
	r, err := rejections.Decode(0, m.Header, nil)
	if err != nil {
		return rejections.Rejected
	}
	return r.Outcome
}

// Note records refusals best effort: published asynchronously, never
// waited for. A record that cannot be sent, or is over the bounds above,
// is counted, not retried. A body too large for the server's max_payload
// is cut (rejections.Record.MsgWithin).
func (r *Recorder) Note(recs []*rejections.Record) {
	for _, rec := range recs {
		if !r.note(rec) {
			r.failed(rec.Outcome)
		}
	}
}

func (r *Recorder) note(rec *rejections.Record) bool {
	m, err := rec.MsgWithin(int(r.nc.MaxPayload()))
	if err != nil {
		return false
	}
	size := int64(len(m.Data) + len(m.Header.Get(rejections.Header)))
	if !rec.CanRecover() && !r.unrecoverable.AllowN(time.Now(), int(min(size, unrecoverableBurst))) {
		return false
	}
	// The body aliases the request's buffer, which the server reuses once
	// the request is answered, and the client may send a message again
	// later (a retry after "no responders").
	if size <= smallRecord {
		m.Data = bytes.Clone(m.Data)
		_, err = r.js.PublishMsgAsync(m, r.expect, jetstream.WithStallWait(time.Millisecond))
		return err == nil
	}
	if r.largePending.Add(size) > maxPendingLarge {
		r.largePending.Add(-size)
		return false
	}
	m.Data = bytes.Clone(m.Data)
	f, err := r.js.PublishMsgAsync(m, r.expect, jetstream.WithStallWait(time.Millisecond))
	if err != nil {
		r.largePending.Add(-size)
		return false
	}
	go func() { // ends by the ack or the publish timeout
		select {
		case <-f.Ok():
		case <-f.Err():
		}
		r.largePending.Add(-size)
	}()
	return true
}

// ErrNotKept is why Keep did not store a record: the caller must not
// answer the event as kept.
var ErrNotKept = errors.New("the rejections stream did not confirm the record in time")

// Keep records quarantined events and returns, per record, nil once the
// stream acknowledged it, or an error wrapping ErrNotKept.
func (r *Recorder) Keep(ctx context.Context, recs []*rejections.Record) []error {
	errs := make([]error, len(recs))
	futures := make([]jetstream.PubAckFuture, len(recs))
	for i, rec := range recs {
		m, err := rec.MsgWithin(int(r.nc.MaxPayload()))
		if err == nil {
			m.Data = bytes.Clone(m.Data) // as in note
			futures[i], err = r.js.PublishMsgAsync(m, r.expect, jetstream.WithStallWait(r.timeout))
		}
		if err != nil {
			errs[i] = fmt.Errorf("%w: %v", ErrNotKept, err)
			r.failed(rec.Outcome)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs[i] = fmt.Errorf("%w: %v", ErrNotKept, err) // counted by the error handler
		case <-ctx.Done():
			// On a timeout the ack may still come: then the record is kept
			// although the client was told 503; its retry is quarantined
			// again, and recover stores the id once (the id ledger).
			errs[i] = fmt.Errorf("%w: %v", ErrNotKept, ctx.Err())
		}
	}
	return errs
}
