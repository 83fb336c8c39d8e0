package backup

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

// clockSkew widens the search for a pending reservation's event: the
// reservation is stamped by ingest's clock, the event by the server's.
const clockSkew = 5 * time.Minute

// LedgerReport is what settling the restored ledger did.
type LedgerReport struct {
	// Entries is how many ids the restored ledger held.
	Entries int
	// Settled is how many pending reservations had their event in the
	// restored stream and now hold its sequence.
	Settled int
	// DroppedPending is how many pending reservations had no event in the
	// restored stream: removed, so the id can be stored.
	DroppedPending int
	// DroppedLater is how many entries named a sequence past the restored
	// stream's last one (events acknowledged after the backup point, not
	// in it): removed, so the id can be stored again.
	DroppedLater int
}

type reservation struct {
	rev   uint64
	since time.Time
}

// settleLedger makes the restored ledger agree with the restored EVENTS
// stream (see the package documentation).
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
	lastSeq := events.CachedInfo().State.LastSeq
	pending, later, err := readLedger(ctx, kv, lastSeq, &rep)
	if err != nil {
		return rep, err
	}
	found, err := findEvents(ctx, events, pending, lastSeq)
	if err != nil {
		return rep, err
	}
	for key, r := range pending {
		seq, ok := found[key]
		if !ok {
			later = append(later, key)
			rep.DroppedPending++
			continue
		}
		if _, err := kv.Update(ctx, key, idledger.SeqValue(seq), r.rev); err != nil {
			return rep, fmt.Errorf("settle id ledger entry %s: %w", key, err)
		}
		rep.Settled++
	}
	for _, key := range later {
		// A stream purge leaves no marker: the key is as if never written,
		// which is what ingest's reservation (create if absent) expects.
		if err := ledger.Purge(ctx, jetstream.WithPurgeSubject(idledger.SubjectPrefix+key)); err != nil {
			return rep, fmt.Errorf("remove id ledger entry %s: %w", key, err)
		}
	}
	log.Info("id ledger settled against the restored stream", "entries", rep.Entries, "settled", rep.Settled,
		"droppedPending", rep.DroppedPending, "droppedLater", rep.DroppedLater)
	return rep, nil
}

// readLedger reads every entry: the pending ones, and the keys of those
// past lastSeq.
func readLedger(ctx context.Context, kv jetstream.KeyValue, lastSeq uint64, rep *LedgerReport) (map[string]reservation, []string, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, nil, fmt.Errorf("read id ledger: %w", err)
	}
	defer func() { _ = w.Stop() }()
	pending := map[string]reservation{}
	var later []string
	for {
		var e jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("read id ledger: %w", ctx.Err())
		case u, ok := <-w.Updates():
			if !ok {
				return nil, nil, errors.New("read id ledger: watcher stopped")
			}
			e = u
		}
		if e == nil { // every current entry was delivered
			return pending, later, nil
		}
		rep.Entries++
		v, err := idledger.Parse(e.Value())
		if err != nil {
			return nil, nil, fmt.Errorf("read id ledger: entry %s: %w", e.Key(), err)
		}
		if v.Seq == 0 {
			pending[e.Key()] = reservation{rev: e.Revision(), since: v.Pending}
			continue
		}
		if v.Seq > lastSeq {
			later = append(later, e.Key())
			rep.DroppedLater++
		}
	}
}

// findEvents returns the first stream sequence of each pending key's
// event in events up to lastSeq, reading headers only, from the oldest
// reservation's time on.
func findEvents(ctx context.Context, events jetstream.Stream, pending map[string]reservation, lastSeq uint64) (map[string]uint64, error) {
	found := map[string]uint64{}
	if len(pending) == 0 || lastSeq == 0 {
		return found, nil
	}
	from := time.Now()
	for _, r := range pending {
		if r.since.Before(from) {
			from = r.since
		}
	}
	from = from.Add(-clockSkew)
	cons, err := events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{schemas.SubjectAll}, DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime: &from, HeadersOnly: true,
	})
	if err != nil {
		return nil, fmt.Errorf("read stream %s for pending ids: %w", schemas.StreamName, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("read stream %s for pending ids: %w", schemas.StreamName, err)
	}
	defer it.Stop()
	for len(found) < len(pending) {
		next, cancel := context.WithTimeout(ctx, 10*time.Second)
		msg, err := it.Next(jetstream.NextContext(next))
		cancel()
		if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
			break // nothing more to read: the messages up to lastSeq were removed
		}
		if err != nil {
			return nil, fmt.Errorf("read stream %s for pending ids: %w", schemas.StreamName, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return nil, fmt.Errorf("read stream %s for pending ids: %w", schemas.StreamName, err)
		}
		if md.Sequence.Stream > lastSeq {
			break
		}
		key := idledger.Key(msg.Headers().Get(schemas.HeaderMsgID))
		if _, ok := pending[key]; ok {
			if _, seen := found[key]; !seen {
				found[key] = md.Sequence.Stream
			}
		}
		if md.Sequence.Stream == lastSeq {
			break
		}
	}
	return found, nil
}
