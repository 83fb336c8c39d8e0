package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strconv"

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

// rollupDoc counts the events of one type in one minute (by event
// timestamp) as a bitmap of their stream sequences: field bits.<seq/64> has
// bit seq%64 set for each counted event. Setting a bit is idempotent (a $bit
// OR), so redelivery and a crash between the history write and the rollup
// write count an event once; the count is the number of set bits, taken on
// read.
//
// Each writer process has its own documents (the writer field, in the id)
// and the reader ORs the bitmaps of all writers: an event counted by two
// projectors is still one bit. Giving each writer its own document also
// means no document has concurrent writers, which FerretDB v1 (whose SQLite
// updates are read-modify-write) would otherwise lose updates under.
type rollupDoc struct {
	ID        string           `bson:"_id"`
	Minute    int64            `bson:"minute"`
	EventType string           `bson:"eventType"`
	Writer    string           `bson:"writer"`
	Bits      map[string]int64 `bson:"bits"`
}

// History is the MongoDB event history and its per-minute rollups.
type History struct {
	db     *mongo.Database
	fixed  *Collections // nil: follow the live generation pointer
	writer string
}

// NewHistory returns the history stored in db under the given collections.
func NewHistory(db *mongo.Database, c Collections) *History {
	return &History{db: db, fixed: &c, writer: "default"}
}

// FollowHistory returns the live history: every call reads the generation
// pointer and uses that generation's collections, so a call never mixes
// generations and a switch takes effect on the next call.
func FollowHistory(db *mongo.Database) *History {
	return &History{db: db, writer: "default"}
}

// collections resolves the collections this call works on.
func (h *History) collections(ctx context.Context) (events, rollups *mongo.Collection, err error) {
	c := DefaultCollections
	if h.fixed != nil {
		c = *h.fixed
	} else {
		gen, err := HistoryGeneration(ctx, h.db)
		if err != nil {
			return nil, nil, err
		}
		c = CollectionsFor(gen)
	}
	return h.db.Collection(c.Events), h.db.Collection(c.Rollups), nil
}

// Writer returns a copy of h that writes rollups as the named process. Every
// concurrently running writer needs its own name.
func (h *History) Writer(name string) *History {
	c := *h
	c.writer = name
	return &c
}

// EnsureIndexes creates the query indexes. The unique index on _id (the
// event id) is what makes history writes idempotent.
func (h *History) EnsureIndexes(ctx context.Context) error {
	events, rollups, err := h.collections(ctx)
	if err != nil {
		return err
	}
	err = ensureIndexes(ctx, events, []mongo.IndexModel{
		{Keys: bson.D{{Key: "eventType", Value: 1}, {Key: "timestamp", Value: -1}, {Key: "seq", Value: -1}}},
		{Keys: bson.D{{Key: "userId", Value: 1}, {Key: "timestamp", Value: -1}, {Key: "seq", Value: -1}}},
		{Keys: bson.D{{Key: "timestamp", Value: -1}, {Key: "seq", Value: -1}}},
		{Keys: bson.D{{Key: "seq", Value: 1}}},
	})
	if err != nil {
		return err
	}
	return ensureIndexes(ctx, rollups, []mongo.IndexModel{
		{Keys: bson.D{{Key: "minute", Value: 1}, {Key: "eventType", Value: 1}}},
	})
}

// ApplyResult says what a history write did.
type ApplyResult struct {
	Inserted   int // new events
	Duplicates int // events already in the history (redelivery, replay, late duplicates)
}

// Apply writes events (with Seq set) to the history and its rollups. Events
// already present are left untouched, so the first stored copy of an id wins
// and redelivery is a no-op. An event's rollup bit is set when its history
// document holds its sequence — newly inserted, or inserted by an earlier
// attempt that crashed before the rollup write — and not for a second copy
// of an id under another sequence.
func (h *History) Apply(ctx context.Context, events []schemas.Event) (ApplyResult, error) {
	if len(events) == 0 {
		return ApplyResult{}, nil
	}
	evColl, rollups, err := h.collections(ctx)
	if err != nil {
		return ApplyResult{}, err
	}
	docs := make([]any, len(events))
	for i, ev := range events {
		doc, err := toDoc(ev)
		if err != nil {
			return ApplyResult{}, err
		}
		docs[i] = doc
	}
	_, err = evColl.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var dups []int
	if err != nil {
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
			return ApplyResult{}, fmt.Errorf("insert %d events: %w", len(events), err)
		}
		for _, we := range bwe.WriteErrors {
			if !mongo.IsDuplicateKeyError(we) {
				return ApplyResult{}, fmt.Errorf("insert event %s: %w", events[we.Index].ID, we)
			}
			dups = append(dups, we.Index)
		}
	}
	res := ApplyResult{Duplicates: len(dups), Inserted: len(events) - len(dups)}
	skip, err := otherCopies(ctx, evColl, events, dups)
	if err != nil {
		return res, err
	}
	return res, h.markRollups(ctx, rollups, events, skip)
}

// otherCopies returns the indexes of duplicate events whose stored document
// has a different sequence: second copies of an id, not to be counted.
func otherCopies(ctx context.Context, coll *mongo.Collection, events []schemas.Event, dups []int) (map[int]bool, error) {
	if len(dups) == 0 {
		return nil, nil
	}
	ids := make([]string, len(dups))
	for i, d := range dups {
		ids[i] = events[d].ID
	}
	cur, err := coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "seq", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("read duplicate events: %w", err)
	}
	var stored []struct {
		ID  string `bson:"_id"`
		Seq int64  `bson:"seq"`
	}
	if err := cur.All(ctx, &stored); err != nil {
		return nil, fmt.Errorf("read duplicate events: %w", err)
	}
	seqOf := make(map[string]int64, len(stored))
	for _, d := range stored {
		seqOf[d.ID] = d.Seq
	}
	skip := map[int]bool{}
	for _, d := range dups {
		if seqOf[events[d].ID] != int64(events[d].Seq) {
			skip[d] = true
		}
	}
	return skip, nil
}

// markRollups sets the rollup bits of the events not skipped.
func (h *History) markRollups(ctx context.Context, coll *mongo.Collection, events []schemas.Event, skip map[int]bool) error {
	type key struct {
		minute    int64
		eventType string
	}
	masks := map[key]map[string]int64{}
	for i, ev := range events {
		if skip[i] {
			continue
		}
		k := key{MinuteOf(ev.Timestamp), ev.EventType}
		if masks[k] == nil {
			masks[k] = map[string]int64{}
		}
		masks[k]["bits."+strconv.FormatUint(ev.Seq/64, 10)] |= int64(uint64(1) << (ev.Seq % 64))
	}
	if len(masks) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, 0, len(masks))
	for k, fields := range masks {
		bits := make(bson.D, 0, len(fields))
		for field, mask := range fields {
			bits = append(bits, bson.E{Key: field, Value: bson.D{{Key: "or", Value: mask}}})
		}
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: fmt.Sprintf("%d|%s|%s", k.minute, k.eventType, h.writer)}}).
			SetUpdate(bson.D{
				{Key: "$bit", Value: bits},
				{Key: "$setOnInsert", Value: bson.D{
					{Key: "minute", Value: k.minute}, {Key: "eventType", Value: k.eventType}, {Key: "writer", Value: h.writer},
				}},
			}).
			SetUpsert(true))
	}
	if _, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
		return fmt.Errorf("mark %d rollups: %w", len(models), err)
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
