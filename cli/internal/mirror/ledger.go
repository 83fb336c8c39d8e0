package mirror

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

// The ledger and EVENTS were mirrored independently, so at the cut either
// may be ahead of the other. On the primary, ingest reserves an id (a
// pending entry) before it appends the event and writes the event's
// sequence after; the mirrored ledger holds every write the primary made
// up to its last mirrored message's time. So after promotion:
//
//   - a pending entry whose event is in EVENTS gets its sequence (it is a
//     duplicate from now on); one whose event is not is removed;
//   - an entry naming a sequence past EVENTS' last one (its event was not
//     mirrored) is removed, so the id can be stored again;
//   - an event appended after the ledger's last mirrored write may have no
//     entry: one is added, so a re-POST of its id answers duplicate.
//
// Only the events from the ledger's last write on (less serverSkew) and
// from the oldest pending reservation on (less clockSkew) are read. An
// event with a server-assigned id read there gets an entry too: harmless,
// a client posting that id is answered duplicate, as it should be.
const (
	// serverSkew covers servers of a primary cluster whose clocks differ
	// (the ledger's and EVENTS' leaders may be two servers).
	serverSkew = 30 * time.Second
	// clockSkew covers ingest's clock, which stamps reservations.
	clockSkew = 5 * time.Minute
)

// LedgerReport is what settling the promoted ledger did.
type LedgerReport struct {
	// Entries is how many ids the mirrored ledger held.
	Entries int
	// Settled pending reservations whose event is in the stream.
	Settled int
	// DroppedPending reservations whose event is not in the stream.
	DroppedPending int
	// DroppedLater entries naming a sequence past the stream's last one.
	DroppedLater int
	// Added entries for events the ledger had not received.
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

func settleLedger(ctx context.Context, js jetstream.JetStream, events jetstream.Stream, log *slog.Logger) (LedgerReport, error) {
	var rep LedgerReport
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

	// Where to start reading EVENTS: the ledger's last write, or the
	// oldest reservation, whichever is earlier (zero: from the start).
	var from time.Time
	if len(entries) > 0 {
		from = ledger.CachedInfo().State.LastTime.Add(-serverSkew)
		for _, e := range entries {
			if e.seq == 0 && e.since.Add(-clockSkew).Before(from) {
				from = e.since.Add(-clockSkew)
			}
		}
	}
	if lastSeq > 0 && (from.IsZero() || !from.After(evInfo.State.LastTime)) {
		if err := scanEvents(ctx, events, from, lastSeq, func(id string, seq uint64) error {
			rep.Scanned++
			if rep.ScannedFrom == 0 {
				rep.ScannedFrom = seq
			}
			key := idledger.Key(id)
			e, ok := entries[key]
			switch {
			case !ok:
				rev, err := kv.Create(ctx, key, idledger.SeqValue(seq))
				if err != nil {
					return fmt.Errorf("add id ledger entry of %s: %w", id, err)
				}
				entries[key] = &entry{rev: rev, seq: seq}
				rep.Added++
			case e.seq == 0 && !e.settled:
				rev, err := kv.Update(ctx, key, idledger.SeqValue(seq), e.rev)
				if err != nil {
					return fmt.Errorf("settle id ledger entry of %s: %w", id, err)
				}
				e.rev, e.seq, e.settled = rev, seq, true
				rep.Settled++
			}
			return nil
		}); err != nil {
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
	log.Info("id ledger settled against the promoted stream", "entries", rep.Entries, "settled", rep.Settled,
		"droppedPending", rep.DroppedPending, "droppedLater", rep.DroppedLater, "added", rep.Added, "scanned", rep.Scanned)
	return rep, nil
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
// from the time from (zero: the first) to lastSeq, reading headers only.
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
