package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// LedgerBucket is the KV bucket that remembers client event ids beyond the
// stream's dedupe window: key = sha256(id), value = the id's stream sequence.
const LedgerBucket = "EVENT_IDS"

// LedgerOptions configure the id ledger.
type LedgerOptions struct {
	// TTL is how long a client id is remembered.
	TTL time.Duration
	// Replicas matches the EVENTS stream's replicas.
	Replicas int
}

// Ledger records the first stream sequence of every client-supplied event id.
//
// The write path for a client id is: look the id up (a known id is answered
// as a duplicate without publishing), publish with Nats-Msg-Id, then create
// the ledger key → seq (a compare-and-set: create fails if the key exists).
// Inside the stream's window JetStream itself also reports duplicates. Two
// copies of one id racing past the lookup at the same moment after the
// window both publish; the second create fails, its reply says duplicate
// with the original sequence, and the stray copy stays in the stream (the
// history, keyed by id, ignores it; see resolveExisting).
type Ledger struct {
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	subj string
}

// OpenLedger creates or updates the ledger bucket.
func OpenLedger(ctx context.Context, js jetstream.JetStream, o LedgerOptions) (*Ledger, error) {
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      LedgerBucket,
		Description: "Kiln: first stream sequence of each client event id (durable idempotency)",
		History:     1,
		TTL:         o.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open id ledger: %w", err)
	}
	return &Ledger{js: js, kv: kv, subj: "$KV." + LedgerBucket + "."}, nil
}

func ledgerKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// settle records the acked client ids and answers late duplicates with
// the original sequence. A ledger failure never fails an acked event (it
// is durable in the stream and projections are keyed by id), but it is
// returned, so the caller can record the id again before the dedupe window
// ends (the publisher hands it to the resolver).
func (l *Ledger) settle(ctx context.Context, events []Event, results []Result, known map[int]uint64) error {
	type pending struct {
		i int
		f jetstream.PubAckFuture
	}
	var creates []pending
	var errs []error
	for i, e := range events {
		if _, ok := known[i]; ok || !e.ClientID || results[i].Err != nil {
			continue
		}
		msg := nats.NewMsg(l.subj + ledgerKey(e.ID))
		msg.Data = strconv.AppendUint(nil, results[i].Seq, 10)
		f, err := l.js.PublishMsgAsync(msg, jetstream.WithExpectLastSequencePerSubject(0))
		if err != nil {
			errs = append(errs, &settleError{i, fmt.Errorf("record id %s: %w", e.ID, err)})
			continue
		}
		creates = append(creates, pending{i, f})
	}
	for _, c := range creates {
		select {
		case <-c.f.Ok():
		case err := <-c.f.Err():
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
				err = l.resolveExisting(ctx, events[c.i].ID, &results[c.i])
			}
			if err != nil {
				errs = append(errs, &settleError{c.i, fmt.Errorf("record id %s: %w", events[c.i].ID, err)})
			}
		case <-ctx.Done():
			errs = append(errs, &settleError{c.i, fmt.Errorf("record id %s: %w", events[c.i].ID, ctx.Err())})
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

// lookup returns the recorded sequence of every client id the ledger knows,
// by event index, and the indexes whose read failed: a failed read is not
// "unknown id" (publishing then could store the event a second time after
// the dedupe window), so the caller answers those events 503.
func (l *Ledger) lookup(ctx context.Context, events []Event) (known map[int]uint64, failed map[int]error) {
	if !slices.ContainsFunc(events, func(e Event) bool { return e.ClientID }) {
		return nil, nil // server-assigned ids only (the common case): nothing to read
	}
	var (
		mu sync.Mutex
		g  errgroup.Group
	)
	g.SetLimit(lookupConcurrency)
	for i, e := range events {
		if !e.ClientID {
			continue
		}
		g.Go(func() error {
			seq, err := l.get(ctx, e.ID)
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if failed == nil {
					failed = map[int]error{}
				}
				failed[i] = err
				return nil
			}
			if known == nil {
				known = map[int]uint64{}
			}
			known[i] = seq
			return nil
		})
	}
	_ = g.Wait()
	return known, failed
}

// get reads the sequence recorded for id; jetstream.ErrKeyNotFound if none.
func (l *Ledger) get(ctx context.Context, id string) (uint64, error) {
	entry, err := l.kv.Get(ctx, ledgerKey(id))
	if err != nil {
		return 0, fmt.Errorf("read id ledger: %w", err)
	}
	seq, err := strconv.ParseUint(string(entry.Value()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read id ledger: entry of %s: %w", id, err)
	}
	return seq, nil
}

// resolveExisting handles an id the ledger already holds: the answer is
// the recorded (first) sequence. A copy stored after the dedupe window (a
// late duplicate) is left in the stream: consumers may have seen it
// already, and deleting it would make the counters (deduplicated by
// sequence) and a rebuild disagree; the history is keyed by id and holds
// the event once.
func (l *Ledger) resolveExisting(ctx context.Context, id string, r *Result) error {
	first, err := l.get(ctx, id)
	if err != nil {
		return err
	}
	if first != r.Seq {
		r.Seq, r.Duplicate = first, true
	}
	return nil
}
