package rejections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Query selects records. Zero fields select all.
type Query struct {
	// Type is an event type.
	Type string
	// Field keeps records with a reason about this field (HasField).
	Field string
	// Since keeps records at or after this time.
	Since time.Time
	// Before keeps records with a sequence below it (a page cursor); 0 is
	// from the newest.
	Before uint64
	// Limit is the most records returned (List).
	Limit int
}

func (q *Query) match(r *Record) bool {
	return (q.Type == "" || r.EventType == q.Type) && (q.Field == "" || r.HasField(q.Field))
}

// MaxScan bounds the records one List reads: a page of a rare type among
// many others ends early, with a cursor to go on from.
const MaxScan = 10_000

// List returns the records q selects, newest first, and the cursor of the
// next page (0 when there is none): at most q.Limit records, reading at
// most MaxScan, by direct gets from the newest sequence down.
func List(ctx context.Context, s jetstream.Stream, q Query) (recs []Record, next uint64, err error) {
	info, err := s.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s: %w", StreamName, err)
	}
	last, first := info.State.LastSeq, info.State.FirstSeq
	seq := last
	if q.Before > 0 && q.Before-1 < last {
		seq = q.Before - 1
	}
	limit := max(q.Limit, 1)
	for scanned := 0; seq >= first && seq > 0; seq, scanned = seq-1, scanned+1 {
		if scanned == MaxScan || len(recs) == limit {
			return recs, seq + 1, nil
		}
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted, or aged out meanwhile
		}
		if err != nil {
			return nil, 0, fmt.Errorf("stream %s seq %d: %w", StreamName, seq, err)
		}
		r, err := Decode(seq, m.Header, m.Data)
		if err != nil {
			continue // not a record this package wrote
		}
		if !q.Since.IsZero() && r.Time.Before(q.Since) {
			return recs, 0, nil // older ones are older still
		}
		if q.match(&r) {
			recs = append(recs, r)
		}
	}
	return recs, 0, nil
}

// Each calls fn with every record q selects (Limit and Before ignored),
// oldest first, through an ephemeral consumer deleted at the end, until
// the records present at the start are read.
func Each(ctx context.Context, js jetstream.JetStream, q Query, fn func(Record) error) error {
	cfg := jetstream.ConsumerConfig{
		FilterSubjects: []string{subjectAll}, DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true, InactiveThreshold: time.Minute,
	}
	if q.Type != "" {
		cfg.FilterSubjects = []string{Subject(q.Type)}
	}
	if !q.Since.IsZero() {
		since := q.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	c, err := js.CreateConsumer(ctx, StreamName, cfg)
	if err != nil {
		return fmt.Errorf("read %s: %w", StreamName, err)
	}
	defer func() {
		del, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = js.DeleteConsumer(del, StreamName, c.CachedInfo().Name) // else it goes after InactiveThreshold
	}()
	for {
		// No wait: the server answers with what the consumer has now, and
		// "no messages" once it has delivered everything.
		batch, err := c.FetchNoWait(256)
		if err != nil {
			return fmt.Errorf("read %s: %w", StreamName, err)
		}
		n, pending := 0, uint64(1)
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("read %s: %w", StreamName, err)
			}
			pending = meta.NumPending
			r, err := Decode(meta.Sequence.Stream, m.Headers(), m.Data())
			if err != nil || !q.match(&r) {
				continue
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("read %s: %w", StreamName, err)
		}
		if n == 0 || pending == 0 {
			return ctx.Err()
		}
	}
}
