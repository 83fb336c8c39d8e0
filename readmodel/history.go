package readmodel

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/schemas"
)

// Collections names the MongoDB collections of one history generation.
type Collections struct {
	Events  string
	Rollups string
}

// DefaultCollections are the collection names of the live generation.
var DefaultCollections = Collections{Events: "events", Rollups: "rollups_minute"}

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
}

// rollupDoc counts the events of one type in one minute (by event timestamp).
type rollupDoc struct {
	ID        string `bson:"_id"`
	Minute    int64  `bson:"minute"`
	EventType string `bson:"eventType"`
	Count     int64  `bson:"count"`
}

// History is the MongoDB event history and its per-minute rollups.
type History struct {
	events  *mongo.Collection
	rollups *mongo.Collection
}

// NewHistory returns the history stored in db under the given collections.
func NewHistory(db *mongo.Database, c Collections) *History {
	return &History{events: db.Collection(c.Events), rollups: db.Collection(c.Rollups)}
}

// EnsureIndexes creates the query indexes. The unique index on _id (the
// event id) is what makes history writes idempotent.
func (h *History) EnsureIndexes(ctx context.Context) error {
	_, err := h.events.Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "eventType", Value: 1}, {Key: "timestamp", Value: -1}, {Key: "seq", Value: -1}}},
		{Keys: bson.D{{Key: "userId", Value: 1}, {Key: "timestamp", Value: -1}, {Key: "seq", Value: -1}}},
		{Keys: bson.D{{Key: "timestamp", Value: -1}, {Key: "seq", Value: -1}}},
		{Keys: bson.D{{Key: "seq", Value: 1}}},
	})
	if err != nil {
		return fmt.Errorf("create history indexes: %w", err)
	}
	_, err = h.rollups.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "minute", Value: 1}, {Key: "eventType", Value: 1}},
	})
	if err != nil {
		return fmt.Errorf("create rollup indexes: %w", err)
	}
	return nil
}

// ApplyResult says what a history write did.
type ApplyResult struct {
	Inserted   int // new events
	Duplicates int // events already in the history (redelivery, replay, late duplicates)
}

// Apply writes events (with Seq set) to the history. Events already present
// are left untouched, so the first stored copy of an id wins and redelivery
// is a no-op. Rollups are incremented for the newly inserted events only, so
// two projectors racing on one event count it once.
func (h *History) Apply(ctx context.Context, events []schemas.Event) (ApplyResult, error) {
	if len(events) == 0 {
		return ApplyResult{}, nil
	}
	docs := make([]any, len(events))
	for i, ev := range events {
		doc, err := toDoc(ev)
		if err != nil {
			return ApplyResult{}, err
		}
		docs[i] = doc
	}
	_, err := h.events.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	dup := map[int]bool{}
	if err != nil {
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
			return ApplyResult{}, fmt.Errorf("insert %d events: %w", len(events), err)
		}
		for _, we := range bwe.WriteErrors {
			if !mongo.IsDuplicateKeyError(we) {
				return ApplyResult{}, fmt.Errorf("insert event %s: %w", events[we.Index].ID, we)
			}
			dup[we.Index] = true
		}
	}
	res := ApplyResult{Duplicates: len(dup), Inserted: len(events) - len(dup)}
	if res.Inserted == 0 {
		return res, nil
	}
	return res, h.incrementRollups(ctx, events, dup)
}

func (h *History) incrementRollups(ctx context.Context, events []schemas.Event, skip map[int]bool) error {
	type key struct {
		minute    int64
		eventType string
	}
	counts := map[key]int64{}
	for i, ev := range events {
		if !skip[i] {
			counts[key{MinuteOf(ev.Timestamp), ev.EventType}]++
		}
	}
	models := make([]mongo.WriteModel, 0, len(counts))
	for k, n := range counts {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: fmt.Sprintf("%d|%s", k.minute, k.eventType)}}).
			SetUpdate(bson.D{
				{Key: "$inc", Value: bson.D{{Key: "count", Value: n}}},
				{Key: "$setOnInsert", Value: bson.D{{Key: "minute", Value: k.minute}, {Key: "eventType", Value: k.eventType}}},
			}).
			SetUpsert(true))
	}
	if _, err := h.rollups.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
		return fmt.Errorf("increment %d rollups: %w", len(models), err)
	}
	return nil
}

// MinuteOf truncates a millisecond timestamp to its minute.
func MinuteOf(ms int64) int64 {
	return ms - ((ms%60_000)+60_000)%60_000
}

func toDoc(ev schemas.Event) (eventDoc, error) {
	d := eventDoc{
		ID: ev.ID, Seq: int64(ev.Seq), EventType: ev.EventType, UserID: ev.UserID,
		Timestamp: ev.Timestamp, Minute: MinuteOf(ev.Timestamp), ReceivedAt: ev.ReceivedAt,
	}
	if len(ev.Metadata) > 0 {
		md, ok, err := metadataToBSON(ev.Metadata)
		if err != nil {
			return d, fmt.Errorf("event %s: %w", ev.ID, err)
		}
		if ok {
			d.Metadata = md
		} else {
			d.MetadataJSON = string(ev.Metadata)
		}
	}
	return d, nil
}
