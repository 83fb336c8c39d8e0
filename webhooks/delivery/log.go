package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// LogCollection holds one record per event × endpoint, keyed by webhook id.
const LogCollection = "webhook_deliveries"

// Statuses of a delivery.
const (
	StatusSucceeded = "succeeded"
	StatusRetrying  = "retrying"
	StatusDead      = "dead"
)

// callTimeout bounds every MongoDB call.
const callTimeout = 10 * time.Second

// Record is a delivery's log entry.
type Record struct {
	ID            string    `bson:"_id" json:"id"` // the webhook id
	EndpointID    string    `bson:"endpointId" json:"endpointId"`
	EventID       string    `bson:"eventId" json:"eventId"`
	EventType     string    `bson:"eventType" json:"eventType"`
	Seq           uint64    `bson:"seq" json:"seq"`
	Status        string    `bson:"status" json:"status"`
	AttemptCount  int       `bson:"attemptCount" json:"attemptCount"`
	Attempts      []Attempt `bson:"attempts" json:"attempts"`
	NextAttemptAt int64     `bson:"nextAttemptAt" json:"nextAttemptAt,omitempty"`
	Reason        string    `bson:"reason,omitempty" json:"reason,omitempty"`
	// Job is kept while the delivery is not done, for redrive.
	Job       *Job  `bson:"job,omitempty" json:"-"`
	CreatedAt int64 `bson:"createdAt" json:"createdAt"`
	UpdatedAt int64 `bson:"updatedAt" json:"updatedAt"`
}

// Log is the delivery log in MongoDB.
type Log struct {
	coll *mongo.Collection
}

// NewLog returns the log on db.
func NewLog(db *mongo.Database) *Log { return &Log{coll: db.Collection(LogCollection)} }

// AttemptCount returns how many attempts a delivery has had (0: none).
func (l *Log) AttemptCount(ctx context.Context, id string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var r struct {
		N int `bson:"attemptCount"`
	}
	err := l.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}},
		options.FindOne().SetProjection(bson.D{{Key: "attemptCount", Value: 1}})).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("delivery %s: %w", id, err)
	}
	return r.N, nil
}

// Get returns one delivery.
func (l *Log) Get(ctx context.Context, id string) (*Record, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var r Record
	err := l.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("delivery %s: %w", id, err)
	}
	return &r, nil
}

// ErrNotFound is returned for an unknown delivery.
var ErrNotFound = errors.New("delivery not found")

// Query selects deliveries.
type Query struct {
	EndpointID string // "" any
	Status     string // "" any
	Since      int64  // Unix ms of creation; 0 any
	Limit      int64  // 0: no limit
}

// IDs returns the ids of the deliveries matching q, newest first, without
// loading the records.
func (l *Log) IDs(ctx context.Context, q Query) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	cur, err := l.coll.Find(ctx, q.filter(), q.options().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("find deliveries: %w", err)
	}
	defer cur.Close(ctx)
	out := []string{}
	for cur.Next(ctx) {
		if id, ok := cur.Current.Lookup("_id").StringValueOK(); ok {
			out = append(out, id)
		}
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("find deliveries: %w", err)
	}
	return out, nil
}

// Find returns the deliveries matching q, newest first. It scans the
// collection on FerretDB; the log is an operator's view, not a hot path.
func (l *Log) Find(ctx context.Context, q Query) ([]Record, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	cur, err := l.coll.Find(ctx, q.filter(), q.options())
	if err != nil {
		return nil, fmt.Errorf("find deliveries: %w", err)
	}
	out := []Record{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("find deliveries: %w", err)
	}
	return out, nil
}

func (q *Query) filter() bson.D {
	filter := bson.D{}
	if q.EndpointID != "" {
		filter = append(filter, bson.E{Key: "endpointId", Value: q.EndpointID})
	}
	if q.Status != "" {
		filter = append(filter, bson.E{Key: "status", Value: q.Status})
	}
	if q.Since > 0 {
		filter = append(filter, bson.E{Key: "createdAt", Value: bson.D{{Key: "$gte", Value: q.Since}}})
	}
	return filter
}

func (q *Query) options() *options.FindOptionsBuilder {
	opts := options.Find().SetSort(bson.D{{Key: "updatedAt", Value: -1}})
	if q.Limit > 0 {
		opts.SetLimit(q.Limit)
	}
	return opts
}

// record writes one entry.
func (l *Log) record(ctx context.Context, e entry) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := l.coll.BulkWrite(ctx, []mongo.WriteModel{e.model(time.Now().UnixMilli())}); err != nil {
		return fmt.Errorf("record delivery %s: %w", e.job.WebhookID, err)
	}
	return nil
}

// entry is one attempt's outcome to record.
type entry struct {
	job     *Job
	attempt Attempt
	status  string
	next    int64  // Unix ms of the next try, 0 none
	reason  string // why it is dead
	first   bool   // first attempt of a fresh job: insert, no update needed
}

// model is the write of e.
func (e *entry) model(now int64) mongo.WriteModel {
	if e.first && e.status == StatusSucceeded {
		return mongo.NewInsertOneModel().SetDocument(e.record(now))
	}
	set := bson.D{
		{Key: "status", Value: e.status}, {Key: "nextAttemptAt", Value: e.next},
		{Key: "reason", Value: e.reason}, {Key: "updatedAt", Value: now},
	}
	update := bson.D{
		{Key: "$setOnInsert", Value: bson.D{
			{Key: "endpointId", Value: e.job.EndpointID}, {Key: "eventId", Value: e.job.EventID},
			{Key: "eventType", Value: e.job.EventType}, {Key: "seq", Value: e.job.Seq}, {Key: "createdAt", Value: now},
		}},
		{Key: "$inc", Value: bson.D{{Key: "attemptCount", Value: 1}}},
		{Key: "$push", Value: bson.D{{Key: "attempts", Value: e.attempt}}},
	}
	if e.status == StatusSucceeded {
		update = append(update, bson.E{Key: "$unset", Value: bson.D{{Key: "job", Value: ""}}})
	} else {
		set = append(set, bson.E{Key: "job", Value: e.job})
	}
	update = append(update, bson.E{Key: "$set", Value: set})
	return mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: e.job.WebhookID}}).
		SetUpdate(update).SetUpsert(true)
}

func (e *entry) record(now int64) *Record {
	return &Record{
		ID: e.job.WebhookID, EndpointID: e.job.EndpointID, EventID: e.job.EventID, EventType: e.job.EventType,
		Seq: e.job.Seq, Status: e.status, AttemptCount: 1, Attempts: []Attempt{e.attempt},
		CreatedAt: now, UpdatedAt: now,
	}
}
