package readmodel

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/xoptions"

	"github.com/kilnhq/kiln/schemas"
)

// ErrNotFound is returned for an event id the history does not hold.
var ErrNotFound = errors.New("event not found")

// ErrBadCursor is returned for a cursor Find did not produce.
var ErrBadCursor = errors.New("malformed cursor")

// Cursor is a keyset position in the newest-first order (timestamp, seq).
type Cursor struct {
	Timestamp int64
	Seq       int64
}

// String encodes the cursor for a URL.
func (c Cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.Timestamp, 10) + "." + strconv.FormatInt(c.Seq, 10)))
}

// ParseCursor decodes a cursor produced by Cursor.String.
func ParseCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, ErrBadCursor
	}
	ts, seq, ok := strings.Cut(string(b), ".")
	if !ok {
		return Cursor{}, ErrBadCursor
	}
	var c Cursor
	if c.Timestamp, err = strconv.ParseInt(ts, 10, 64); err != nil {
		return Cursor{}, ErrBadCursor
	}
	if c.Seq, err = strconv.ParseInt(seq, 10, 64); err != nil {
		return Cursor{}, ErrBadCursor
	}
	return c, nil
}

// Query selects events, newest timestamp first.
type Query struct {
	Types []string // any of these event types; empty is all
	// TypePatterns are event-type patterns ('*' one token, a trailing '>'
	// the rest: a subscriber token's types); an event must match one of
	// them too. Only MongoDB answers them (a regular expression).
	TypePatterns []string
	UserID       string // empty is all
	From         int64  // timestamp ≥ From (ms); 0 is unbounded
	To           int64  // timestamp ≤ To (ms); 0 is unbounded
	Limit        int
	After        *Cursor // continue after this position
}

func (q Query) filter() bson.D {
	f := bson.D{}
	switch len(q.Types) {
	case 0:
	case 1:
		f = append(f, bson.E{Key: "eventType", Value: q.Types[0]})
	default:
		f = append(f, bson.E{Key: "eventType", Value: bson.D{{Key: "$in", Value: q.Types}}})
	}
	if len(q.TypePatterns) > 0 {
		f = append(f, bson.E{Key: "eventType", Value: bson.D{{Key: "$regex", Value: patternsRegexp(q.TypePatterns)}}})
	}
	if q.UserID != "" {
		f = append(f, bson.E{Key: "userId", Value: q.UserID})
	}
	ts := bson.D{}
	if q.From > 0 {
		ts = append(ts, bson.E{Key: "$gte", Value: q.From})
	}
	if q.To > 0 {
		ts = append(ts, bson.E{Key: "$lte", Value: q.To})
	}
	if len(ts) > 0 {
		f = append(f, bson.E{Key: "timestamp", Value: ts})
	}
	if q.After != nil {
		f = append(f, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "timestamp", Value: bson.D{{Key: "$lt", Value: q.After.Timestamp}}}},
			bson.D{{Key: "timestamp", Value: q.After.Timestamp}, {Key: "seq", Value: bson.D{{Key: "$lt", Value: q.After.Seq}}}},
		}})
	}
	return f
}

// patternsRegexp is the regular expression of event types matching any of
// patterns, as schemas.MatchType matches them.
func patternsRegexp(patterns []string) string {
	alts := make([]string, len(patterns))
	for i, p := range patterns {
		tokens := strings.Split(p, ".")
		for j, t := range tokens {
			switch t {
			case "*":
				tokens[j] = `[^.]+`
			case ">":
				tokens[j] = `.+`
			default:
				tokens[j] = regexp.QuoteMeta(t)
			}
		}
		alts[i] = strings.Join(tokens, `\.`)
	}
	return "^(?:" + strings.Join(alts, "|") + ")$"
}

// storedDoc is eventDoc as read back, with metadata left raw.
type storedDoc struct {
	ID            string   `bson:"_id"`
	Seq           int64    `bson:"seq"`
	EventType     string   `bson:"eventType"`
	UserID        string   `bson:"userId"`
	Timestamp     int64    `bson:"timestamp"`
	ReceivedAt    int64    `bson:"receivedAt"`
	Metadata      bson.Raw `bson:"metadata,omitempty"`
	MetadataJSON  string   `bson:"metadataJSON,omitempty"`
	SchemaVersion int      `bson:"schemaVersion,omitempty"`
}

func (d storedDoc) event() (schemas.Event, error) {
	ev := schemas.Event{
		ID: d.ID, EventType: d.EventType, UserID: d.UserID, Timestamp: d.Timestamp,
		ReceivedAt: d.ReceivedAt, SchemaVersion: d.SchemaVersion, Seq: uint64(d.Seq),
	}
	switch {
	case len(d.Metadata) > 0:
		md, err := metadataToJSON(d.Metadata)
		if err != nil {
			return ev, fmt.Errorf("event %s: %w", d.ID, err)
		}
		ev.Metadata = md
	case d.MetadataJSON != "":
		ev.Metadata = []byte(d.MetadataJSON)
	}
	return ev, nil
}

// Find returns up to q.Limit events matching q, newest first, and the cursor
// of the next page (nil on the last page). A deadline on ctx bounds the
// store's work too: the find carries it as maxTimeMS, so MongoDB and
// FerretDB stop a query its caller has given up on. The driver sends none
// with a find (it returns a cursor), and FerretDB, which scans the whole
// history for a filtered query, finished every abandoned scan, slowing
// everything after a burst of reads over the gateway's budget.
func (h *History) Find(ctx context.Context, q Query) ([]schemas.Event, *Cursor, error) {
	opts := options.Find().
		SetSort(bson.D{{Key: "timestamp", Value: -1}, {Key: "seq", Value: -1}}).
		SetLimit(int64(q.Limit) + 1)
	if deadline, ok := ctx.Deadline(); ok {
		// Find never adds a maxTimeMS of its own (a client timeoutMS
		// included), so this one is not sent twice.
		maxTime := bson.D{{Key: "maxTimeMS", Value: max(1, time.Until(deadline).Milliseconds())}}
		if err := xoptions.SetInternalFindOptions(opts, "addCommandFields", maxTime); err != nil {
			return nil, nil, fmt.Errorf("find events: %w", err)
		}
	}
	coll, err := h.collection(ctx)
	if err != nil {
		return nil, nil, err
	}
	cur, err := coll.Find(ctx, q.filter(), opts)
	if err != nil {
		return nil, nil, fmt.Errorf("find events: %w", err)
	}
	var docs []storedDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, nil, fmt.Errorf("read events: %w", err)
	}
	var next *Cursor
	if len(docs) > q.Limit {
		docs = docs[:q.Limit]
		last := docs[len(docs)-1]
		next = &Cursor{Timestamp: last.Timestamp, Seq: last.Seq}
	}
	events := make([]schemas.Event, len(docs))
	for i, d := range docs {
		if events[i], err = d.event(); err != nil {
			return nil, nil, err
		}
	}
	return events, next, nil
}

// Get returns one event by id.
func (h *History) Get(ctx context.Context, id string) (schemas.Event, error) {
	events, err := h.collection(ctx)
	if err != nil {
		return schemas.Event{}, err
	}
	var d storedDoc
	err = events.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return schemas.Event{}, ErrNotFound
	}
	if err != nil {
		return schemas.Event{}, fmt.Errorf("get event %s: %w", id, err)
	}
	return d.event()
}

// Count returns how many events the history holds.
func (h *History) Count(ctx context.Context) (int64, error) {
	events, err := h.collection(ctx)
	if err != nil {
		return 0, err
	}
	n, err := events.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	return n, nil
}
