package publish

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/idledger"
)

// LedgerOptions configure the id ledger.
type LedgerOptions struct {
	// TTL is how long a client id is remembered.
	TTL time.Duration
	// Replicas matches the EVENTS stream's replicas.
	Replicas int
	// DedupeWindow is the EVENTS stream's duplicate window (read from the
	// stream when zero). A writer finding another's reservation younger
	// than 3/4 of it appends too (JetStream deduplicates the two).
	DedupeWindow time.Duration
	// StaleAfter is how long a reservation may stay pending before another
	// writer takes it over (default twice the dedupe window: by then the
	// first writer has settled it unless it died or gave up).
	StaleAfter time.Duration
}

// Ledger records the first stream sequence of every client-supplied event id.
//
// The write path for a client id is: reserve the id (reserve.go: an atomic
// create of a pending entry; a known id is answered as a duplicate without
// publishing), publish with Nats-Msg-Id, then replace the reservation with
// the sequence (settle). Inside the stream's window JetStream itself also
// reports duplicates.
type Ledger struct {
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	subj string // the keys' subject prefix
	// stream is the bucket's stream, read by batched direct gets.
	stream string
	// joinWithin and staleAfter classify another writer's reservation
	// by age (see reserve.go).
	joinWithin, staleAfter time.Duration
}

// OpenLedger creates or updates the ledger bucket.
func OpenLedger(ctx context.Context, js jetstream.JetStream, o LedgerOptions) (*Ledger, error) {
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      idledger.Bucket,
		Description: "Kiln: first stream sequence of each client event id (durable idempotency)",
		History:     1,
		TTL:         o.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open id ledger: %w", err)
	}
	if o.DedupeWindow == 0 {
		stream, err := js.Stream(ctx, schemas.StreamName)
		if err != nil {
			return nil, fmt.Errorf("open id ledger: dedupe window: %w", err)
		}
		o.DedupeWindow = stream.CachedInfo().Config.Duplicates
	}
	if o.StaleAfter == 0 {
		o.StaleAfter = 2 * o.DedupeWindow
	}
	return &Ledger{js: js, kv: kv, subj: idledger.SubjectPrefix, stream: idledger.Stream,
		joinWithin: o.DedupeWindow * 3 / 4, staleAfter: o.StaleAfter}, nil
}

// settle records the sequences of the acked client ids: an update of the
// reservation this call holds (claims.rev), else a create; a key that
// holds another sequence answers the event as a duplicate of it. A ledger
// failure never fails an acked event (it is durable in the stream and
// projections are keyed by id), but it is returned, so the caller can
// record the id again before the dedupe window ends (the publisher hands
// it to the resolver).
func (l *Ledger) settle(ctx context.Context, events []Event, results []Result, c claims) error {
	type pending struct {
		i int
		f jetstream.PubAckFuture
	}
	var writes []pending
	var errs []error
	for i, e := range events {
		if _, ok := c.known[i]; ok || !e.ClientID || results[i].Err != nil {
			continue
		}
		msg := nats.NewMsg(l.subj + idledger.Key(e.ID))
		msg.Data = idledger.SeqValue(results[i].Seq)
		f, err := l.js.PublishMsgAsync(msg, jetstream.WithExpectLastSequencePerSubject(c.rev[i]))
		if err != nil {
			errs = append(errs, &settleError{i, fmt.Errorf("record id %s: %w", e.ID, err)})
			continue
		}
		writes = append(writes, pending{i, f})
	}
	for _, w := range writes {
		select {
		case <-w.f.Ok():
		case err := <-w.f.Err():
			if wrongLastSeq(err) {
				err = l.resolveExisting(ctx, events[w.i].ID, &results[w.i])
			}
			if err != nil {
				errs = append(errs, &settleError{w.i, fmt.Errorf("record id %s: %w", events[w.i].ID, err)})
			}
		case <-ctx.Done():
			errs = append(errs, &settleError{w.i, fmt.Errorf("record id %s: %w", events[w.i].ID, ctx.Err())})
		}
	}
	return errors.Join(errs...)
}

// settleError is the failure to record the id of events[i].
type settleError struct {
	i   int
	err error
}

func (e *settleError) Error() string { return e.err.Error() }
func (e *settleError) Unwrap() error { return e.err }

// unsettled returns the event indexes whose ids settle failed to record.
func unsettled(err error) []int {
	var out []int
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			var se *settleError
			if errors.As(e, &se) {
				out = append(out, se.i)
			}
		}
	}
	return out
}

// lookupConcurrency bounds the parallel ledger reads of one request.
const lookupConcurrency = 32

// resolveExisting handles an id whose key changed under this writer: a
// recorded sequence is the answer (a duplicate when it is not ours); a
// reservation (another writer's, or one taken over) is replaced by our
// sequence, which is the id's, as it was acked inside the dedupe window of
// every append of the id still pending (the reservation rules). A copy
// stored after the window is left in the stream: consumers may have seen it,
// and deleting it would make the counters and a rebuild disagree.
func (l *Ledger) resolveExisting(ctx context.Context, id string, r *Result) error {
	for range 3 {
		v, rev, err := l.read(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			_, err = l.kv.Create(ctx, idledger.Key(id), idledger.SeqValue(r.Seq))
		} else if err == nil && v.Seq == 0 {
			_, err = l.kv.Update(ctx, idledger.Key(id), idledger.SeqValue(r.Seq), rev)
		} else if err == nil {
			if v.Seq != r.Seq {
				r.Seq, r.Duplicate = v.Seq, true
			}
			return nil
		}
		if err == nil || !errors.Is(err, jetstream.ErrKeyExists) && !wrongLastSeq(err) {
			return err
		}
	}
	return fmt.Errorf("id %s: the ledger entry keeps changing", id)
}
