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

	"github.com/kilnhq/kiln/schemas"
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
// with the original sequence, and the stray copy is deleted from the stream
// (the history, keyed by id, ignores it even if a consumer saw it first).
type Ledger struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	stream jetstream.Stream
	subj   string
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
	stream, err := js.Stream(ctx, schemas.StreamName)
	if err != nil {
		return nil, fmt.Errorf("open id ledger: %w", err)
	}
	return &Ledger{js: js, kv: kv, stream: stream, subj: "$KV." + LedgerBucket + "."}, nil
}

func ledgerKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// settle records the acked client ids and rewrites late duplicates to the
// original sequence. Ledger failures never fail an acked event: the event is
// durable in the stream and projections are keyed by id.
func (l *Ledger) settle(ctx context.Context, events []Event, results []Result, known map[int]uint64) {
	type pending struct {
		i int
		f jetstream.PubAckFuture
	}
	var creates []pending
	for i, e := range events {
		if _, ok := known[i]; ok || !e.ClientID || results[i].Err != nil {
			continue
		}
		msg := nats.NewMsg(l.subj + ledgerKey(e.ID))
		msg.Data = strconv.AppendUint(nil, results[i].Seq, 10)
		f, err := l.js.PublishMsgAsync(msg, jetstream.WithExpectLastSequencePerSubject(0))
		if err != nil {
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
				l.resolveExisting(ctx, events[c.i].ID, &results[c.i])
			}
		case <-ctx.Done():
			return
		}
	}
}

// lookupConcurrency bounds the parallel ledger reads of one request.
const lookupConcurrency = 32

// lookup returns the recorded sequence of every client id the ledger knows,
// by event index. A failed read counts as unknown: the publish that follows
// is still deduplicated by JetStream's window and by settle.
func (l *Ledger) lookup(ctx context.Context, events []Event) map[int]uint64 {
	if !slices.ContainsFunc(events, func(e Event) bool { return e.ClientID }) {
		return nil // server-assigned ids only (the common case): nothing to read
	}
	var (
		mu    sync.Mutex
		known map[int]uint64
		g     errgroup.Group
	)
	g.SetLimit(lookupConcurrency)
	for i, e := range events {
		if !e.ClientID {
			continue
		}
		g.Go(func() error {
			entry, err := l.kv.Get(ctx, ledgerKey(e.ID))
			if err != nil {
				return nil
			}
			seq, err := strconv.ParseUint(string(entry.Value()), 10, 64)
			if err != nil {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			if known == nil {
				known = map[int]uint64{}
			}
			known[i] = seq
			return nil
		})
	}
	_ = g.Wait()
	return known
}

// resolveExisting handles an id the ledger already holds.
func (l *Ledger) resolveExisting(ctx context.Context, id string, r *Result) {
	entry, err := l.kv.Get(ctx, ledgerKey(id))
	if err != nil {
		return
	}
	first, err := strconv.ParseUint(string(entry.Value()), 10, 64)
	if err != nil || first == r.Seq {
		return
	}
	if !r.Duplicate {
		// A late duplicate: JetStream's window had passed and stored a second
		// copy. Remove it so the stream keeps one event per id.
		_ = l.stream.DeleteMsg(ctx, r.Seq)
	}
	r.Seq, r.Duplicate = first, true
}
