package rejections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

// Bounds of one Summarize: its work and its answer stay bounded whatever
// the stream holds.
const (
	// MaxSummarized is the most records one summary reads: the newest
	// ones of the window when it holds more (Summary.Truncated).
	MaxSummarized = 50_000
	// MaxSummaryTypes is the most event types summarized one by one; the
	// records of the others are counted under OtherType.
	MaxSummaryTypes = 500
	// MaxSummaryFields is the most fields counted per type; the others
	// are counted under OtherField.
	MaxSummaryFields = 100
	// OtherType and OtherField name what is past those caps.
	OtherType  = "other"
	OtherField = "other"
	// InvalidType is the type of records whose eventType was missing or
	// invalid (subject rejections.untyped).
	InvalidType = ""
)

// SummaryQuery selects the records a summary counts.
type SummaryQuery struct {
	// Since is the window's start (required).
	Since time.Time
	// Type keeps one event type ("" all).
	Type string
	// Top is how many fields are listed per type, most failing first
	// (0: 5).
	Top int
	// Now is the window's end (zero: time.Now).
	Now time.Time
	// Max is the most records read (0 or above MaxSummarized:
	// MaxSummarized).
	Max int
}

// Summary counts refused and quarantined events per type and field over a
// window, from the records' headers (their bodies are not read).
type Summary struct {
	// Since is the window asked for; From the oldest record counted time
	// (Since, unless Truncated); Until the window's end.
	Since time.Time `json:"since"`
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
	// Scanned is how many records were read, Truncated whether the window
	// held more than MaxSummarized (only the newest were read).
	Scanned   int  `json:"scanned"`
	Truncated bool `json:"truncated"`
	// Total is the events counted; Types them by type, most first.
	Total int           `json:"total"`
	Types []TypeSummary `json:"types"`
}

// TypeSummary is one type's refusals in the window.
type TypeSummary struct {
	// Type is the event type ("" when it was missing or invalid).
	Type        string `json:"type"`
	Refused     int    `json:"refused"`
	Rejected    int    `json:"rejected"`
	Quarantined int    `json:"quarantined"`
	// LastMinute counts the refusals in the minute up to Until.
	LastMinute int `json:"lastMinute"`
	// PerMinute is Refused over the minutes from From to Until.
	PerMinute float64 `json:"perMinute"`
	// Last is the newest refusal's time.
	Last time.Time `json:"last"`
	// Fields are the Top fields with the most errors, most first.
	Fields []FieldSummary `json:"fields"`
	fields map[string]*FieldSummary
}

// FieldSummary is one field's errors, with the newest as an example.
type FieldSummary struct {
	// Field is the dotted path ("metadata.amount"), "" for the event as
	// a whole.
	Field string `json:"field"`
	// Count is how many refused events had an error about it.
	Count   int     `json:"count"`
	Example Example `json:"example"`
}

// Example points at one record: GET /rejections shows its body.
type Example struct {
	Seq     uint64    `json:"seq"`
	ID      string    `json:"id,omitempty"`
	Message string    `json:"message"`
	KeyID   string    `json:"keyId,omitempty"`
	Time    time.Time `json:"time"`
}

// Summarize reads the window's records, oldest first, through an
// ephemeral consumer of headers only (deleted at the end), at most
// MaxSummarized of them: when the window holds more, the newest.
func Summarize(ctx context.Context, js jetstream.JetStream, q SummaryQuery) (Summary, error) {
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	if q.Top <= 0 {
		q.Top = 5
	}
	if q.Max <= 0 || q.Max > MaxSummarized {
		q.Max = MaxSummarized
	}
	sum := Summary{Since: q.Since.UTC(), From: q.Since.UTC(), Until: q.Now.UTC(), Types: []TypeSummary{}}
	byType := map[string]*TypeSummary{}
	filter := subjectAll
	if q.Type != "" {
		filter = Subject(q.Type)
	}
	s, err := js.Stream(ctx, StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return sum, nil // ingest has not started yet
	}
	if err != nil {
		return sum, fmt.Errorf("stream %s: %w", StreamName, err)
	}
	since := q.Since
	cfg := jetstream.ConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
		AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true, InactiveThreshold: time.Minute, HeadersOnly: true,
	}
	c, err := s.CreateConsumer(ctx, cfg)
	if err != nil {
		return sum, fmt.Errorf("read %s: %w", StreamName, err)
	}
	info := c.CachedInfo()
	if info.NumPending > uint64(q.Max) {
		// The newest q.Max of the stream: at most that many of
		// the window, fewer with a type filter.
		deleteConsumer(ctx, s, info.Name)
		st, err := s.Info(ctx)
		if err != nil {
			return sum, fmt.Errorf("stream %s: %w", StreamName, err)
		}
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartSequencePolicy, nil
		cfg.OptStartSeq = st.State.FirstSeq
		if st.State.LastSeq >= uint64(q.Max) {
			cfg.OptStartSeq = max(cfg.OptStartSeq, st.State.LastSeq-uint64(q.Max)+1)
		}
		if c, err = s.CreateConsumer(ctx, cfg); err != nil {
			return sum, fmt.Errorf("read %s: %w", StreamName, err)
		}
		sum.Truncated = true
	}
	defer deleteConsumer(ctx, s, c.CachedInfo().Name)
	lastMinute := q.Now.Add(-time.Minute)
	for sum.Scanned < q.Max {
		batch, err := c.FetchNoWait(min(512, q.Max-sum.Scanned))
		if err != nil {
			return sum, fmt.Errorf("read %s: %w", StreamName, err)
		}
		n, pending := 0, uint64(1)
		for m := range batch.Messages() {
			n++
			sum.Scanned++
			meta, err := m.Metadata()
			if err != nil {
				return sum, fmt.Errorf("read %s: %w", StreamName, err)
			}
			pending = meta.NumPending
			r, err := Decode(meta.Sequence.Stream, m.Headers(), nil)
			if err != nil || r.Time.Before(q.Since) || r.Time.After(q.Now) {
				continue
			}
			if sum.Total == 0 && sum.Truncated {
				sum.From = r.Time.UTC()
			}
			sum.Total++
			count(byType, &r, lastMinute)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return sum, fmt.Errorf("read %s: %w", StreamName, err)
		}
		if n == 0 || pending == 0 {
			break
		}
	}
	minutes := max(q.Now.Sub(sum.From).Minutes(), 1)
	for _, t := range byType {
		t.PerMinute = float64(t.Refused) / minutes
		for _, f := range t.fields {
			t.Fields = append(t.Fields, *f)
		}
		slices.SortFunc(t.Fields, func(a, b FieldSummary) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Field, b.Field))
		})
		if len(t.Fields) > q.Top {
			t.Fields = t.Fields[:q.Top]
		}
		if t.Fields == nil {
			t.Fields = []FieldSummary{}
		}
		sum.Types = append(sum.Types, *t)
	}
	slices.SortFunc(sum.Types, func(a, b TypeSummary) int {
		return cmp.Or(cmp.Compare(b.Refused, a.Refused), cmp.Compare(a.Type, b.Type))
	})
	return sum, ctx.Err()
}

// count adds one record to its type's summary.
func count(byType map[string]*TypeSummary, r *Record, lastMinute time.Time) {
	typ := r.EventType
	if !schemas.ValidEventType(typ) {
		typ = InvalidType
	}
	t, ok := byType[typ]
	if !ok {
		if len(byType) >= MaxSummaryTypes {
			typ = OtherType
			t = byType[typ]
		}
		if t == nil {
			t = &TypeSummary{Type: typ, fields: map[string]*FieldSummary{}}
			byType[typ] = t
		}
	}
	t.Refused++
	switch r.Outcome {
	case Rejected:
		t.Rejected++
	case Quarantined:
		t.Quarantined++
	}
	if r.Time.After(lastMinute) {
		t.LastMinute++
	}
	if r.Time.After(t.Last) {
		t.Last = r.Time.UTC()
	}
	seen := map[string]bool{}
	for _, e := range r.Reasons {
		field := e.Field
		if _, ok := t.fields[field]; !ok && len(t.fields) >= MaxSummaryFields {
			field = OtherField
		}
		if seen[field] { // an event counts once per field
			continue
		}
		seen[field] = true
		f := t.fields[field]
		if f == nil {
			f = &FieldSummary{Field: field}
			t.fields[field] = f
		}
		f.Count++
		// Oldest first: the last one seen is the newest example.
		f.Example = Example{Seq: r.Seq, ID: r.ID, Message: e.Message, KeyID: r.KeyID, Time: r.Time.UTC()}
	}
}

func deleteConsumer(ctx context.Context, s jetstream.Stream, name string) {
	del, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = s.DeleteConsumer(del, name) // else it goes after InactiveThreshold
}
