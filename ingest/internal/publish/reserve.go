package publish

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/schemas/idledger"
)

// A client id is reserved in the ledger BEFORE its event is appended: the
// reservation is a KV create (atomic: it fails if the key exists) of a
// pending value "p<unix ms>", replaced by the stream sequence once the
// append is acknowledged. So of two writers of one id only the one whose
// create succeeded appends; the other finds the key and
//   - answers duplicate:true with the recorded sequence, or,
//   - if the reservation is pending and younger than most of the dedupe
//     window, appends with the same Nats-Msg-Id, which JetStream turns into
//     the first append's sequence if that landed (it joins the first
//     writer, as the resolver does), or,
//   - if it is pending and older (the first writer is in doubt: stalled, or
//     its resolver is still at work), answers 503 ErrInDoubt, or,
//   - if it is pending for longer than the first writer could still settle
//     it (staleAfter: that writer died, or JetStream stayed unreachable past
//     its resolver's deadline), takes the reservation over and appends.
//     Only this last case can store a second copy of an id (see docs/api.md,
//     "Idempotency and durability").

// ErrInDoubt is the answer to a writer of an id whose first write is still
// unconfirmed: retry later with the same id.
var ErrInDoubt = errors.New("an earlier write of this id is not confirmed yet")

// parseLedgerValue decodes the ledger entry of id.
func parseLedgerValue(id string, v []byte) (idledger.Value, error) {
	val, err := idledger.Parse(v)
	if err != nil {
		return val, fmt.Errorf("read id ledger: entry of %s: %w", id, err)
	}
	return val, nil
}

// claims is the outcome of reserving a request's client ids, by event index.
type claims struct {
	known  map[int]uint64 // recorded sequence: answer duplicate:true
	failed map[int]error  // not appendable now: answer 503
	rev    map[int]uint64 // this call holds (or joined) the reservation at this revision
}

func (c *claims) set(m *map[int]uint64, i int, v uint64) {
	if *m == nil {
		*m = map[int]uint64{}
	}
	(*m)[i] = v
}

func (c *claims) fail(i int, err error) {
	if c.failed == nil {
		c.failed = map[int]error{}
	}
	c.failed[i] = err
}

// reserve reserves every client id of events. The creates are sent
// together and awaited together (one round trip for the request); only ids
// that exist already are read.
func (l *Ledger) reserve(ctx context.Context, events []Event) claims {
	var c claims
	if !slices.ContainsFunc(events, func(e Event) bool { return e.ClientID }) {
		return c // server-assigned ids only (the common case): nothing to reserve
	}
	type pending struct {
		i int
		f jetstream.PubAckFuture
	}
	var creates []pending
	now := time.Now()
	for i, e := range events {
		if !e.ClientID {
			continue
		}
		msg := nats.NewMsg(l.subj + idledger.Key(e.ID))
		msg.Data = idledger.PendingValue(now)
		f, err := l.js.PublishMsgAsync(msg, jetstream.WithExpectLastSequencePerSubject(0))
		if err != nil {
			c.fail(i, fmt.Errorf("reserve id %s: %w", e.ID, err))
			continue
		}
		creates = append(creates, pending{i, f})
	}
	var existing []int
	for _, p := range creates {
		select {
		case ack := <-p.f.Ok():
			c.set(&c.rev, p.i, ack.Sequence)
		case err := <-p.f.Err():
			if wrongLastSeq(err) {
				existing = append(existing, p.i)
			} else {
				c.fail(p.i, fmt.Errorf("reserve id %s: %w", events[p.i].ID, err))
			}
		case <-ctx.Done():
			c.fail(p.i, fmt.Errorf("reserve id %s: %w", events[p.i].ID, ctx.Err()))
		}
	}
	l.existing(ctx, events, existing, &c)
	return c
}

// existing decides, for each index whose id the ledger holds already,
// between duplicate, join, in doubt and take-over. The entries are read
// together (readMany): a retried batch of a thousand client ids is a
// request or two, not a thousand.
func (l *Ledger) existing(ctx context.Context, events []Event, idx []int, c *claims) {
	if len(idx) == 0 {
		return
	}
	ids := make([]string, len(idx))
	for k, i := range idx {
		ids[k] = events[i].ID
	}
	entries, err := l.readMany(ctx, ids)
	if err != nil {
		for _, i := range idx {
			c.fail(i, err)
		}
		return
	}
	var (
		mu sync.Mutex
		g  errgroup.Group
	)
	g.SetLimit(lookupConcurrency)
	for k, i := range idx {
		e, found := entries[ids[k]]
		if !found {
			c.fail(i, fmt.Errorf("read id ledger: id %s: %w", ids[k], jetstream.ErrKeyNotFound))
			continue
		}
		if e.err != nil || e.v.Seq != 0 {
			mu.Lock()
			l.decide(c, i, e.v, e.rev, e.err)
			mu.Unlock()
			continue
		}
		g.Go(func() error {
			v, rev, err := e.v, e.rev, error(nil)
			id := ids[k]
			switch age := time.Since(v.Pending); {
			case age < l.joinWithin:
			case age < l.staleAfter:
				err = fmt.Errorf("id %s: %w", id, ErrInDoubt)
			default:
				rev, err = l.kv.Update(ctx, idledger.Key(id), idledger.PendingValue(time.Now()), rev)
				if err != nil {
					err = fmt.Errorf("take over id %s: %w", id, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			l.decide(c, i, v, rev, err)
			return nil
		})
	}
	_ = g.Wait()
}

// decide records the outcome of an existing id in c.
func (l *Ledger) decide(c *claims, i int, v idledger.Value, rev uint64, err error) {
	switch {
	case err != nil:
		c.fail(i, err)
	case v.Seq != 0:
		c.set(&c.known, i, v.Seq)
	default:
		c.set(&c.rev, i, rev)
	}
}

// ledgerEntry is one id's entry as readMany found it.
type ledgerEntry struct {
	v   idledger.Value
	rev uint64
	err error // the value could not be parsed
}

// multiLastMax is how many subjects nats-server answers in one batched
// direct get (its maxAllowedResponses).
const multiLastMax = 1024

// readMany reads the ledger entries of ids by batched direct gets of the
// keys' last messages (JetStream 2.11+), multiLastMax keys a request; an id
// missing from the answer has no entry. A server without batched gets is
// read an id at a time.
func (l *Ledger) readMany(ctx context.Context, ids []string) (map[string]ledgerEntry, error) {
	out := make(map[string]ledgerEntry, len(ids))
	bySubject := make(map[string]string, len(ids))
	for chunk := range slices.Chunk(ids, multiLastMax) {
		subjects := make([]string, 0, len(chunk))
		for _, id := range chunk {
			subj := l.subj + idledger.Key(id)
			if _, dup := bySubject[subj]; !dup {
				bySubject[subj] = id
				subjects = append(subjects, subj)
			}
		}
		msgs, err := jetstreamext.GetLastMsgsFor(ctx, l.js, l.stream, subjects)
		if err == nil {
			complete := false // the answer reached its last message, or said "none"
			for m, merr := range msgs {
				if errors.Is(merr, jetstreamext.ErrNoMessages) {
					complete = true // none of the keys has an entry
					break
				}
				if merr != nil {
					err = merr
					break
				}
				complete = m.Header.Get(numPendingHeader) == "0"
				if op := m.Header.Get(kvOperationHeader); op != "" && op != "PUT" {
					continue // a delete or purge marker: no entry
				}
				id := bySubject[m.Subject]
				v, perr := parseLedgerValue(id, m.Data)
				out[id] = ledgerEntry{v: v, rev: m.Sequence, err: perr}
			}
			// The answer stops without an error at the request's deadline
			// (natsext.RequestMany): a key it did not reach is not absent.
			if err == nil && !complete {
				err = fmt.Errorf("batched read of %d keys cut short: %w", len(subjects), cmp.Or(ctx.Err(), context.DeadlineExceeded))
			}
		}
		if errors.Is(err, jetstreamext.ErrBatchUnsupported) {
			return l.readEach(ctx, ids)
		}
		if err != nil {
			return nil, fmt.Errorf("read id ledger: %w", err)
		}
	}
	return out, nil
}

// kvOperationHeader marks a KV delete or purge ("DEL", "PURGE").
const kvOperationHeader = "KV-Operation"

// numPendingHeader counts the messages a batched direct get still has to
// send after this one: "0" on the last.
const numPendingHeader = "Nats-Num-Pending"

// readEach reads the ledger entries of ids one request each
// (lookupConcurrency at a time), for servers without batched gets.
func (l *Ledger) readEach(ctx context.Context, ids []string) (map[string]ledgerEntry, error) {
	var (
		mu  sync.Mutex
		g   errgroup.Group
		out = make(map[string]ledgerEntry, len(ids))
	)
	g.SetLimit(lookupConcurrency)
	for _, id := range ids {
		g.Go(func() error {
			entry, err := l.kv.Get(ctx, idledger.Key(id))
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read id ledger: %w", err)
			}
			v, perr := parseLedgerValue(id, entry.Value())
			mu.Lock()
			defer mu.Unlock()
			out[id] = ledgerEntry{v: v, rev: entry.Revision(), err: perr}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// read returns the ledger entry of id and its revision.
func (l *Ledger) read(ctx context.Context, id string) (idledger.Value, uint64, error) {
	entry, err := l.kv.Get(ctx, idledger.Key(id))
	if err != nil {
		return idledger.Value{}, 0, fmt.Errorf("read id ledger: %w", err)
	}
	v, err := parseLedgerValue(id, entry.Value())
	return v, entry.Revision(), err
}

func wrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
