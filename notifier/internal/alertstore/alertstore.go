// Package alertstore is the notifier's MongoDB side: it inserts decided
// alerts (the unique _id makes each decision once), keeps each channel's
// delivery status, and remembers per rule and dedupe key when the last
// alert was decided, for throttling. Layouts of alerts and deliveries are
// readmodel's, which the gateway reads.
//
// Writers, so that no document has two concurrent updaters (FerretDB v1
// updates are read-modify-write): alerts and throttle marks are written by
// the one event consumer; a delivery document is inserted (insert-only,
// never overwriting) by the event consumer before its job is queued, and
// updated afterwards only by that channel's worker, one job at a time per
// delivery.
package alertstore

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/readmodel"
)

// ThrottleCollection holds, per rule and dedupe key, the event timestamp of
// the latest decided alert.
const ThrottleCollection = "alert_throttle"

// Store reads and writes alerts.
type Store struct {
	read                         *readmodel.Alerts
	alerts, deliveries, throttle *mongo.Collection
}

// New returns the store in db.
func New(db *mongo.Database) *Store {
	r := readmodel.NewAlerts(db)
	alerts, deliveries := r.Collections()
	return &Store{read: r, alerts: alerts, deliveries: deliveries, throttle: db.Collection(ThrottleCollection)}
}

// EnsureIndexes creates the indexes the gateway's reads use.
func (s *Store) EnsureIndexes(ctx context.Context) error { return s.read.EnsureIndexes(ctx) }

// Ping checks MongoDB answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.alerts.Database().Client().Ping(ctx, nil)
}

// Get returns the alert with id, if it was decided.
func (s *Store) Get(ctx context.Context, id string) (readmodel.Alert, bool, error) {
	var a readmodel.Alert
	err := s.alerts.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&a)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return a, false, nil
	}
	if err != nil {
		return a, false, fmt.Errorf("find alert %s: %w", id, err)
	}
	return a, true, nil
}

// Insert stores a newly decided alert. It returns false, and writes
// nothing, when an alert with its id was decided before.
func (s *Store) Insert(ctx context.Context, a readmodel.Alert) (bool, error) {
	_, err := s.alerts.InsertOne(ctx, a)
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("insert alert %s: %w", a.ID, err)
	}
	return true, nil
}

// CreateDeliveries inserts a pending delivery per channel of a, leaving
// any that exist untouched.
func (s *Store) CreateDeliveries(ctx context.Context, a readmodel.Alert, now int64) error {
	docs := make([]any, 0, len(a.Channels))
	for _, ch := range a.Channels {
		docs = append(docs, readmodel.Delivery{
			ID: readmodel.DeliveryID(a.ID, ch), AlertID: a.ID, Channel: ch, Status: readmodel.DeliveryPending, UpdatedAt: now,
		})
	}
	_, err := s.deliveries.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) {
		for _, we := range bwe.WriteErrors {
			if !mongo.IsDuplicateKeyError(we) {
				return fmt.Errorf("insert deliveries of %s: %w", a.ID, err)
			}
		}
		return nil
	}
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("insert deliveries of %s: %w", a.ID, err)
	}
	return nil
}

// Deliveries returns an alert's deliveries by channel.
func (s *Store) Deliveries(ctx context.Context, alertID string) (map[string]readmodel.Delivery, error) {
	cur, err := s.deliveries.Find(ctx, bson.D{{Key: "alertId", Value: alertID}})
	if err != nil {
		return nil, fmt.Errorf("find deliveries of %s: %w", alertID, err)
	}
	var ds []readmodel.Delivery
	if err := cur.All(ctx, &ds); err != nil {
		return nil, fmt.Errorf("read deliveries of %s: %w", alertID, err)
	}
	out := make(map[string]readmodel.Delivery, len(ds))
	for _, d := range ds {
		out[d.Channel] = d
	}
	return out, nil
}

// Delivery returns one delivery, if it exists.
func (s *Store) Delivery(ctx context.Context, id string) (readmodel.Delivery, bool, error) {
	var d readmodel.Delivery
	err := s.deliveries.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return d, false, nil
	}
	if err != nil {
		return d, false, fmt.Errorf("find delivery %s: %w", id, err)
	}
	return d, true, nil
}

// SaveDelivery writes a delivery's status (its channel worker only).
func (s *Store) SaveDelivery(ctx context.Context, d readmodel.Delivery) error {
	_, err := s.deliveries.ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, d, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("save delivery %s: %w", d.ID, err)
	}
	return nil
}

// throttleDoc is the latest decided alert of a rule and dedupe key.
type throttleDoc struct {
	ID      string `bson:"_id"` // rule + "|" + dedupe key (rule names have no "|")
	At      int64  `bson:"at"`  // its event timestamp (ms)
	AlertID string `bson:"alertId"`
}

func throttleID(rule, key string) string { return rule + "|" + key }

// LastDecided returns the event timestamp and id of the latest alert
// decided for rule and key.
func (s *Store) LastDecided(ctx context.Context, rule, key string) (at int64, alertID string, found bool, err error) {
	var d throttleDoc
	err = s.throttle.FindOne(ctx, bson.D{{Key: "_id", Value: throttleID(rule, key)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("find throttle %s: %w", rule, err)
	}
	return d.At, d.AlertID, true, nil
}

// MarkDecided records that alert alertID of rule and key is being decided
// for an event at at (ms); the time only moves forward.
func (s *Store) MarkDecided(ctx context.Context, rule, key, alertID string, at int64) error {
	_, err := s.throttle.UpdateOne(ctx, bson.D{{Key: "_id", Value: throttleID(rule, key)}},
		bson.D{
			{Key: "$max", Value: bson.D{{Key: "at", Value: at}}},
			{Key: "$set", Value: bson.D{{Key: "alertId", Value: alertID}}},
		}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("mark throttle %s: %w", rule, err)
	}
	return nil
}
