package readmodel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/schemas"
)

// Collections names the MongoDB collections of one history generation.
type Collections struct {
	Events string
}

// DefaultCollections() returns the collection names of the live generation.
func DefaultCollections() Collections { return Collections{Events: "events"} }

// eventDoc is an event in the history collection, keyed by event id.
type eventDoc struct {
	ID           string `bson:"_id"`
	Seq          int64  `bson:"seq"`
	EventType    string `bson:"eventType"`
	UserID       string `bson:"userId"`
	Timestamp    int64  `bson:"timestamp"`
	Minute       int64  `bson:"minute"`
	ReceivedAt   int64  `bson:"receivedAt"`
	Metadata     any    `bson:"metadata,omitempty"`
	MetadataJSON string `bson:"metadataJSON,omitempty"`
	// SchemaVersion is the schema version that validated the event; absent
	// for a type with no schema.
	SchemaVersion int `bson:"schemaVersion,omitempty"`
}

// History is the MongoDB event history.
//
// Its write path is one unordered InsertMany per batch and nothing else: no
// update that matches existing documents. Earlier versions also kept
// per-minute rollups with upserting $bit updates, which nothing read (the
// /metrics counts come from Redis) and which, on the embedded FerretDB v1,
// hung the projector: one update command with more than ~100 upserts that
// match existing documents holds a SQLite connection per match and exhausts
// FerretDB's pool of 100 (issue 12).
type History struct {
	db      *mongo.Database
	fixed   *Collections // nil: follow the live generation pointer
	timeout time.Duration
}

// NewHistory returns the history stored in db under the given collections.
func NewHistory(db *mongo.Database, c Collections) *History {
	return &History{db: db, fixed: &c, timeout: CallTimeout}
}

// FollowHistory returns the live history: every call reads the generation
// pointer and uses that generation's collections, so a call never mixes
// generations and a switch takes effect on the next call.
func FollowHistory(db *mongo.Database) *History {
	return &History{db: db, timeout: CallTimeout}
}

// WithTimeout returns a copy of h whose calls each get at most d (when the
// caller's context has no earlier deadline).
func (h *History) WithTimeout(d time.Duration) *History {
	c := *h
	c.timeout = d
	return &c
}

// collection resolves the events collection this call works on.
func (h *History) collection(ctx context.Context) (*mongo.Collection, error) {
	c := DefaultCollections()
	if h.fixed != nil {
		c = *h.fixed
	} else {
		gen, err := HistoryGeneration(ctx, h.db)
		if err != nil {
			return nil, err
		}
		c = CollectionsFor(gen)
	}
	return h.db.Collection(c.Events), nil
}

// EnsureIndexes creates the query indexes. The unique index on _id (the
// event id) is what makes history writes idempotent.
func (h *History) EnsureIndexes(ctx context.Context) error {
	ctx, cancel := withDeadline(ctx, h.timeout)
	defer cancel()
	events, err := h.collection(ctx)
	if err != nil {
		return err
	}
	return ensureIndexes(ctx, events, []mongo.IndexModel{
		{Keys: bson.D{{Key: "eventType", Value: 1}, {Key: "timestamp", Value: -1}, {Key: "seq", Value: -1}}},
		{Keys: bson.D{{Key: "userId", Value: 1}, {Key: "timestamp", Value: -1}, {Key: "seq", Value: -1}}},
		{Keys: bson.D{{Key: "timestamp", Value: -1}, {Key: "seq", Value: -1}}},
		{Keys: bson.D{{Key: "seq", Value: 1}}},
	})
}

// ErrUnstorable marks an event the history can never store (its metadata
// does not decode): retrying cannot help, unlike a store error.
var ErrUnstorable = errors.New("event cannot be stored")

// ApplyResult says what a history write did.
type ApplyResult struct {
	Inserted   int // new events
	Duplicates int // events already in the history (redelivery, replay, late duplicates)
}

// Apply writes events (with Seq set) to the history with one unordered
// InsertMany. Events already present are left untouched, so the first
// stored copy of an id wins and redelivery is a no-op. The call has a
// deadline (see WithTimeout): a store that hangs returns an error rather
// than holding the caller forever.
func (h *History) Apply(ctx context.Context, events []schemas.Event) (ApplyResult, error) {
	if len(events) == 0 {
		return ApplyResult{}, nil
	}
	docs, err := Docs(events)
	if err != nil {
		return ApplyResult{}, err
	}
	ctx, cancel := withDeadline(ctx, h.timeout)
	defer cancel()
	evColl, err := h.collection(ctx)
	if err != nil {
		return ApplyResult{}, err
	}
	_, err = evColl.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	dups := 0
	if err != nil {
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
			return ApplyResult{}, fmt.Errorf("insert %d events: %w", len(events), err)
		}
		for _, we := range bwe.WriteErrors {
			if !mongo.IsDuplicateKeyError(we) {
				return ApplyResult{}, fmt.Errorf("insert event %s: %w", events[we.Index].ID, we)
			}
			dups++
		}
	}
	return ApplyResult{Duplicates: dups, Inserted: len(events) - dups}, nil
}

// Docs returns the history documents of events, as Apply inserts them (for
// benchmarks whose baseline inserts the same documents).
func Docs(events []schemas.Event) ([]any, error) {
	docs := make([]any, len(events))
	for i, ev := range events {
		doc, err := toDoc(ev)
		if err != nil {
			return nil, err
		}
		docs[i] = doc
	}
	return docs, nil
}

// MinuteOf truncates a millisecond timestamp to its minute.
func MinuteOf(ms int64) int64 {
	return ms - ((ms%60_000)+60_000)%60_000
}

func toDoc(ev schemas.Event) (eventDoc, error) {
	d := eventDoc{
		ID: ev.ID, Seq: int64(ev.Seq), EventType: ev.EventType, UserID: ev.UserID,
		Timestamp: ev.Timestamp, Minute: MinuteOf(ev.Timestamp), ReceivedAt: ev.ReceivedAt,
		SchemaVersion: ev.SchemaVersion,
	}
	if len(ev.Metadata) > 0 {
		md, ok, err := metadataToBSON(ev.Metadata)
		if err != nil {
			return d, fmt.Errorf("event %s: %w: %w", ev.ID, ErrUnstorable, err)
		}
		if ok {
			d.Metadata = md
		} else {
			d.MetadataJSON = string(ev.Metadata)
		}
	}
	return d, nil
}
