// Package ledgersettle makes Kiln's id ledger (schemas/idledger) agree
// with an EVENTS stream that was copied apart from it: `kiln restore`
// (the ledger snapshot was taken after the EVENTS one, so it may be
// ahead) and `kiln mirror promote` (the two were mirrored independently,
// so either may be ahead at the cut).
//
// On the primary, ingest reserves an id (a pending entry) before it
// appends the event and writes the event's sequence after. So, against
// the stream as it now is:
//
//   - a pending entry whose event is in EVENTS gets its sequence (it is a
//     duplicate from now on); one whose event is not is removed;
//   - an entry naming a sequence past EVENTS' last one (its event is not
//     in the stream) is removed, so the id can be stored again;
//   - with Options.AddUnrecorded (the ledger may be behind the stream), an
//     event read that has no entry gets one, so a re-POST of its id
//     answers duplicate.
//
// Only the events from the oldest pending reservation on (less
// clockSkew) are read, and with AddUnrecorded those from the ledger's
// last write on (less serverSkew) too. An event with a server-assigned id
// read there may get an entry: harmless, a client posting that id is
// answered duplicate, as it should be.
package ledgersettle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/idledger"
)

const (
	// serverSkew covers servers of a primary cluster whose clocks differ
	// (the ledger's and EVENTS' leaders may be two servers).
	serverSkew = 30 * time.Second
	// clockSkew covers ingest's clock, which stamps reservations (the
	// event is stamped by the server's).
	clockSkew = 5 * time.Minute
)

// Options says how far the ledger may be from the stream.
type Options struct {
	// AddUnrecorded adds an entry for each event read that has none: the
	// ledger may be behind the stream (a promoted mirror). Without it the
	// ledger is taken to be at or ahead of the stream (a restored backup)
	// and only pending entries are looked up.
	AddUnrecorded bool
	// Log receives the summary; nil discards it.
	Log *slog.Logger
}

// Report is what settling the ledger did.
type Report struct {
	// Entries is how many ids the ledger held.
	Entries int
	// Settled is how many pending reservations had their event in the
	// stream and now hold its sequence.
	Settled int
	// DroppedPending is how many pending reservations had no event in the
	// stream: removed, so the id can be stored.
	DroppedPending int
	// DroppedLater is how many entries named a sequence past the stream's
	// last one (events acknowledged after the copy's point, not in it):
	// removed, so the id can be stored again.
	DroppedLater int
	// Added is how many entries were added for events the ledger had not
	// received (only with Options.AddUnrecorded).
	Added int
	// Scanned is how many events were read, from sequence ScannedFrom.
	Scanned     int
	ScannedFrom uint64
}

type entry struct {
	rev     uint64
	seq     uint64    // 0: pending
	since   time.Time // pending since
	settled bool      // a pending entry whose event was found
}

// errAllFound stops the scan once every pending entry has its event.
var errAllFound = errors.New("every pending entry found")

// Settle makes the id ledger of the deployment js talks to agree with
// events (see the package documentation).
func Settle(ctx context.Context, js jetstream.JetStream, events jetstream.Stream, o Options) (Report, error) {
	var rep Report
	kv, err := js.KeyValue(ctx, idledger.Bucket)
	if err != nil {
		return rep, fmt.Errorf("open id ledger: %w", err)
	}
	ledger, err := js.Stream(ctx, idledger.Stream)
	if err != nil {
		return rep, fmt.Errorf("open id ledger: %w", err)
	}
	evInfo, err := events.Info(ctx)
	if err != nil {
		return rep, fmt.Errorf("stream %s: %w", schemas.StreamName, err)
	}
	lastSeq := evInfo.State.LastSeq
	entries, err := readEntries(ctx, kv)
	if err != nil {
		return rep, err
	}
	rep.Entries = len(entries)

	from, pending, scan := scanStart(entries, ledger.CachedInfo().State.LastTime, o.AddUnrecorded)
	if scan && lastSeq > 0 && (from.IsZero() || !from.After(evInfo.State.LastTime)) {
		err := scanEvents(ctx, events, from, lastSeq, func(id string, seq uint64) error {
			rep.Scanned++
			if rep.ScannedFrom == 0 {
				rep.ScannedFrom = seq
			}
			key := idledger.Key(id)
			e, ok := entries[key]
			switch {
			case !ok && o.AddUnrecorded:
				rev, err := kv.Create(ctx, key, idledger.SeqValue(seq))
				if err != nil {
					return fmt.Errorf("add id ledger entry of %s: %w", id, err)
				}
				entries[key] = &entry{rev: rev, seq: seq}
				rep.Added++
			case ok && e.seq == 0 && !e.settled:
				rev, err := kv.Update(ctx, key, idledger.SeqValue(seq), e.rev)
				if err != nil {
					return fmt.Errorf("settle id ledger entry of %s: %w", id, err)
				}
				e.rev, e.seq, e.settled = rev, seq, true
				rep.Settled++
				if !o.AddUnrecorded && rep.Settled == pending {
					return errAllFound
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, errAllFound) {
			return rep, err
		}
	}
	for key, e := range entries {
		switch {
		case e.seq == 0:
			rep.DroppedPending++
		case e.seq > lastSeq:
			rep.DroppedLater++
		default:
			continue
		}
		// A purge leaves no marker: the key is as if never written, which
		// is what ingest's reservation (create if absent) expects.
		if err := ledger.Purge(ctx, jetstream.WithPurgeSubject(idledger.SubjectPrefix+key)); err != nil {
			return rep, fmt.Errorf("remove id ledger entry %s: %w", key, err)
		}
	}
	if o.Log != nil {
		o.Log.Info("id ledger settled against the stream", "entries", rep.Entries, "settled", rep.Settled,
			"droppedPending", rep.DroppedPending, "droppedLater", rep.DroppedLater, "added", rep.Added, "scanned", rep.Scanned)
	}
	return rep, nil
}

// scanStart is where to start reading EVENTS (zero: from the start), how
// many entries are pending, and whether to read at all: from the oldest
// reservation (less clockSkew) and, with addUnrecorded, from the ledger's
// last write (less serverSkew), whichever is earlier.
func scanStart(entries map[string]*entry, ledgerLast time.Time, addUnrecorded bool) (from time.Time, pending int, scan bool) {
	if len(entries) == 0 {
		return time.Time{}, 0, addUnrecorded
	}
	if addUnrecorded {
		from = ledgerLast.Add(-serverSkew)
	}
	for _, e := range entries {
		if e.seq != 0 {
			continue
		}
		pending++
		if at := e.since.Add(-clockSkew); from.IsZero() || at.Before(from) {
			from = at
		}
	}
	return from, pending, addUnrecorded || pending > 0
}

// readEntries reads every current ledger entry.
func readEntries(ctx context.Context, kv jetstream.KeyValue) (map[string]*entry, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read id ledger: %w", err)
	}
	defer func() { _ = w.Stop() }()
	entries := map[string]*entry{}
	for {
		var e jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("read id ledger: %w", ctx.Err())
		case u, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("read id ledger: watcher stopped")
			}
			e = u
		}
		if e == nil { // every current entry was delivered
			return entries, nil
		}
		v, err := idledger.Parse(e.Value())
		if err != nil {
			return nil, fmt.Errorf("read id ledger: entry %s: %w", e.Key(), err)
		}
		entries[e.Key()] = &entry{rev: e.Revision(), seq: v.Seq, since: v.Pending}
	}
}

// scanEvents calls fn with the id and sequence of every event of events
// from the time from (zero: the first) to lastSeq, reading headers only,
// until fn returns an error (returned as is).
func scanEvents(ctx context.Context, events jetstream.Stream, from time.Time, lastSeq uint64, fn func(id string, seq uint64) error) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{schemas.SubjectAll}, HeadersOnly: true}
	if !from.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &from
	}
	cons, err := events.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read stream %s: %w", schemas.StreamName, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read stream %s: %w", schemas.StreamName, err)
	}
	defer it.Stop()
	for {
		next, cancel := context.WithTimeout(ctx, 10*time.Second)
		msg, err := it.Next(jetstream.NextContext(next))
		cancel()
		if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
			return nil // nothing more to read: the messages up to lastSeq were removed
		}
		if err != nil {
			return fmt.Errorf("read stream %s: %w", schemas.StreamName, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read stream %s: %w", schemas.StreamName, err)
		}
		if md.Sequence.Stream > lastSeq {
			return nil
		}
		if id := msg.Headers().Get(schemas.HeaderMsgID); id != "" {
			if err := fn(id, md.Sequence.Stream); err != nil {
				return err
			}
		}
		if md.Sequence.Stream == lastSeq {
			return nil
		}
	}
}
