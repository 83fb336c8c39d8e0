package publish

import (
	"context"
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

const pendingPrefix = 'p'

func pendingValue(at time.Time) []byte {
	return strconv.AppendInt([]byte{pendingPrefix}, at.UnixMilli(), 10)
}

// ledgerValue is a decoded ledger entry: a sequence, or a reservation
// pending since a time.
type ledgerValue struct {
	seq     uint64
	pending time.Time
}

func parseLedgerValue(id string, v []byte) (ledgerValue, error) {
	if len(v) > 0 && v[0] == pendingPrefix {
		ms, err := strconv.ParseInt(string(v[1:]), 10, 64)
		if err != nil {
			return ledgerValue{}, fmt.Errorf("read id ledger: entry of %s: %w", id, err)
		}
		return ledgerValue{pending: time.UnixMilli(ms)}, nil
	}
	seq, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil {
		return ledgerValue{}, fmt.Errorf("read id ledger: entry of %s: %w", id, err)
	}
	return ledgerValue{seq: seq}, nil
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
		msg := nats.NewMsg(l.subj + ledgerKey(e.ID))
		msg.Data = pendingValue(now)
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
// between duplicate, join, in doubt and take-over.
func (l *Ledger) existing(ctx context.Context, events []Event, idx []int, c *claims) {
	var (
		mu sync.Mutex
		g  errgroup.Group
	)
	g.SetLimit(lookupConcurrency)
	for _, i := range idx {
		g.Go(func() error {
			id := events[i].ID
			v, rev, err := l.read(ctx, id)
			if err == nil && v.seq == 0 {
				switch age := time.Since(v.pending); {
				case age < l.joinWithin:
				case age < l.staleAfter:
					err = fmt.Errorf("id %s: %w", id, ErrInDoubt)
				default:
					rev, err = l.kv.Update(ctx, ledgerKey(id), pendingValue(time.Now()), rev)
					if err != nil {
						err = fmt.Errorf("take over id %s: %w", id, err)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				c.fail(i, err)
			case v.seq != 0:
				c.set(&c.known, i, v.seq)
			default:
				c.set(&c.rev, i, rev)
			}
			return nil
		})
	}
	_ = g.Wait()
}

// read returns the ledger entry of id and its revision.
func (l *Ledger) read(ctx context.Context, id string) (ledgerValue, uint64, error) {
	entry, err := l.kv.Get(ctx, ledgerKey(id))
	if err != nil {
		return ledgerValue{}, 0, fmt.Errorf("read id ledger: %w", err)
	}
	v, err := parseLedgerValue(id, entry.Value())
	return v, entry.Revision(), err
}

func wrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
