// Package deadletter records the events ingest refuses or quarantines in
// the REJECTIONS stream (schemas/rejections) without slowing valid
// requests: refusals are recorded best effort, quarantined events are
// confirmed before they are answered as kept.
package deadletter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas/rejections"
)

// maxPending bounds the records in flight: beyond it a refusal's record is
// dropped (and counted), never waited for.
const maxPending = 4096

// Recorder publishes records to the REJECTIONS stream.
type Recorder struct {
	js      jetstream.JetStream
	timeout time.Duration
	// failed counts records not stored, by outcome.
	failed func(outcome rejections.Outcome)
	expect jetstream.PublishOpt
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
	return &Recorder{js: js, timeout: timeout, failed: failed, expect: jetstream.WithExpectStream(rejections.StreamName)}, nil
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
// waited for. A record that cannot be sent is counted, not retried.
func (r *Recorder) Note(recs []*rejections.Record) {
	for _, rec := range recs {
		m, err := rec.Msg()
		if err == nil {
			_, err = r.js.PublishMsgAsync(m, r.expect, jetstream.WithStallWait(time.Millisecond))
		}
		if err != nil {
			r.failed(rec.Outcome)
		}
	}
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
		m, err := rec.Msg()
		if err == nil {
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
