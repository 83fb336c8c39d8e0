package readmodel

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Alert storage. The notifier decides each alert once and inserts it into
// the alerts collection keyed by its deterministic id, so the unique _id is
// what makes "decided once" hold across redelivery and restarts. Delivery
// status lives in a second collection, one document per alert and channel,
// because each channel's delivery worker updates its own document: FerretDB
// v1 updates are read-modify-write, so two workers must never update one
// document. Alerts are not rebuilt from the stream, so their collections are
// fixed (no generations).
const (
	AlertsCollection     = "alerts"
	DeliveriesCollection = "alert_deliveries"
	// NewAlertSubject is the core NATS subject on which the notifier
	// announces each newly decided alert: the JSON of its [AlertView] (the
	// item GET /alerts returns) with every channel pending; the gateway
	// forwards it on SSE as "event: alert".
	NewAlertSubject = "kiln.alerts.new"
)

// Delivery statuses, per alert and channel.
const (
	DeliveryPending  = "pending"  // queued, not yet attempted
	DeliveryRetrying = "retrying" // an attempt failed; another is scheduled
	DeliverySent     = "sent"     // the channel accepted it
	DeliveryDead     = "dead"     // attempts exhausted; in the ALERTS_DLQ stream
)

// ErrAlertNotFound is returned for an alert id that was never decided.
var ErrAlertNotFound = errors.New("alert not found")

// Alert is one decided alert. Times are Unix milliseconds.
type Alert struct {
	ID        string   `bson:"_id" json:"id"`
	Rule      string   `bson:"rule" json:"rule"`
	Kind      string   `bson:"kind" json:"kind"` // "each" or "threshold"
	Message   string   `bson:"message" json:"message"`
	DedupeKey string   `bson:"dedupeKey" json:"dedupeKey"`
	Channels  []string `bson:"channels" json:"channels"`
	// The event that decided the alert (for a threshold, the one that
	// crossed it).
	EventID        string `bson:"eventId" json:"eventId"`
	EventType      string `bson:"eventType" json:"eventType"`
	EventSeq       int64  `bson:"eventSeq" json:"eventSeq"`
	EventTimestamp int64  `bson:"eventTimestamp" json:"eventTimestamp"`
	UserID         string `bson:"userId" json:"userId"`
	// Threshold alerts: the group (e.g. the userId), the tumbling window
	// [WindowStart, WindowEnd) and the matching events counted in it.
	Group       string `bson:"group,omitempty" json:"group,omitempty"`
	WindowStart int64  `bson:"windowStart,omitempty" json:"windowStart,omitempty"`
	WindowEnd   int64  `bson:"windowEnd,omitempty" json:"windowEnd,omitempty"`
	Count       int    `bson:"count,omitempty" json:"count,omitempty"`
	DecidedAt   int64  `bson:"decidedAt" json:"decidedAt"`

	// Filled on read: the overall status (the worst of the channels':
	// dead, retrying, pending, sent) and each channel's delivery.
	Status     string     `bson:"-" json:"status,omitempty"`
	Deliveries []Delivery `bson:"-" json:"deliveries,omitempty"`
}

// Delivery is the status of one alert on one channel.
type Delivery struct {
	ID        string `bson:"_id" json:"-"` // DeliveryID(alertID, channel)
	AlertID   string `bson:"alertId" json:"-"`
	Channel   string `bson:"channel" json:"channel"`
	Status    string `bson:"status" json:"status"`
	Attempts  int    `bson:"attempts" json:"attempts"`
	LastError string `bson:"lastError,omitempty" json:"lastError,omitempty"`
	NextAt    int64  `bson:"nextAt,omitempty" json:"nextAt,omitempty"` // next attempt (retrying)
	SentAt    int64  `bson:"sentAt,omitempty" json:"sentAt,omitempty"`
	Redrives  int    `bson:"redrives,omitempty" json:"redrives,omitempty"`
	// Tries counts the channel attempts since the job was queued (or last
	// redriven): what MaxAttempts bounds. Attempts counts them all.
	Tries     int   `bson:"tries,omitempty" json:"-"`
	UpdatedAt int64 `bson:"updatedAt" json:"updatedAt"`
}

// DeliveryID names the delivery of an alert on a channel, "alertID:channel".
func DeliveryID(alertID, channel string) string { return alertID + ":" + channel }

// AlertFilter selects alerts, newest decision first.
type AlertFilter struct {
	Limit   int          // 1..1000; 0 means 50
	Rule    string       // exact rule name
	Channel string       // alerts sent (or to be sent) on this channel
	Status  string       // alerts in this overall status, or with their Channel delivery in it
	Before  int64        // decidedAt < Before (ms); 0 is unbounded
	After   *AlertCursor // continue after this position (a page's next cursor)
}

// Alerts reads the alerts and their deliveries.
type Alerts struct {
	alerts, deliveries *mongo.Collection
}

// NewAlerts returns the alerts stored in db.
func NewAlerts(db *mongo.Database) *Alerts {
	return &Alerts{alerts: db.Collection(AlertsCollection), deliveries: db.Collection(DeliveriesCollection)}
}

// Collections returns the alerts and deliveries collections, for the
// notifier's writes.
func (a *Alerts) Collections() (alerts, deliveries *mongo.Collection) { return a.alerts, a.deliveries }

// EnsureIndexes creates the indexes List uses (see ensureIndexes for why it
// asks first).
func (a *Alerts) EnsureIndexes(ctx context.Context) error {
	err := ensureIndexes(ctx, a.alerts, []mongo.IndexModel{
		{Keys: bson.D{{Key: "decidedAt", Value: -1}}},
		{Keys: bson.D{{Key: "rule", Value: 1}, {Key: "decidedAt", Value: -1}}},
	})
	if err != nil {
		return err
	}
	return ensureIndexes(ctx, a.deliveries, []mongo.IndexModel{
		{Keys: bson.D{{Key: "alertId", Value: 1}}},
		{Keys: bson.D{{Key: "status", Value: 1}}},
	})
}

// List returns alerts matching f, newest decision first, each with its
// deliveries and overall status.
func (a *Alerts) List(ctx context.Context, f AlertFilter) ([]Alert, error) {
	out, _, err := a.Find(ctx, f)
	return out, err
}

// Find returns up to f.Limit alerts matching f, newest decision first (ties
// by id, descending), each with its deliveries and overall status, and the
// cursor of the next page (nil on the last page).
func (a *Alerts) Find(ctx context.Context, f AlertFilter) ([]Alert, *AlertCursor, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	filter := bson.D{}
	if f.Rule != "" {
		filter = append(filter, bson.E{Key: "rule", Value: f.Rule})
	}
	if f.Before > 0 {
		filter = append(filter, bson.E{Key: "decidedAt", Value: bson.D{{Key: "$lt", Value: f.Before}}})
	}
	if f.After != nil {
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "decidedAt", Value: bson.D{{Key: "$lt", Value: f.After.DecidedAt}}}},
			bson.D{{Key: "decidedAt", Value: f.After.DecidedAt}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: f.After.ID}}}},
		}})
	}
	if f.Channel != "" {
		filter = append(filter, bson.E{Key: "channels", Value: f.Channel})
	}
	if f.Status != "" {
		byStatus, err := a.unsentByStatus(ctx, f.Channel)
		if err != nil {
			return nil, nil, err
		}
		if f.Status == DeliverySent {
			// Every alert whose deliveries (on the channel) are all sent:
			// the complement of the few that are not, yet.
			var unsent []string
			for _, ids := range byStatus {
				unsent = append(unsent, ids...)
			}
			filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$nin", Value: append([]string{}, unsent...)}}})
		} else {
			filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$in", Value: append([]string{}, byStatus[f.Status]...)}}})
		}
	}
	opts := options.Find().SetSort(bson.D{{Key: "decidedAt", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(f.Limit) + 1)
	cur, err := a.alerts.Find(ctx, filter, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("find alerts: %w", err)
	}
	out := []Alert{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, nil, fmt.Errorf("read alerts: %w", err)
	}
	var next *AlertCursor
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		next = &AlertCursor{DecidedAt: last.DecidedAt, ID: last.ID}
	}
	if err := a.attachDeliveries(ctx, out); err != nil {
		return nil, nil, err
	}
	if f.Status != "" {
		// An alert whose delivery documents are not written yet (decided a
		// moment ago) is pending, not sent: drop what the status filter let
		// through by their absence. The page may come out short; the cursor
		// still continues after it.
		out = slices.DeleteFunc(out, func(al Alert) bool { return alertStatus(al, f.Channel) != f.Status })
	}
	return out, next, nil
}

// Get returns one alert with its deliveries, or ErrAlertNotFound.
func (a *Alerts) Get(ctx context.Context, id string) (Alert, error) {
	var al Alert
	err := a.alerts.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&al)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return al, ErrAlertNotFound
	}
	if err != nil {
		return al, fmt.Errorf("find alert %s: %w", id, err)
	}
	list := []Alert{al}
	if err := a.attachDeliveries(ctx, list); err != nil {
		return al, err
	}
	return list[0], nil
}

// unsentByStatus returns the ids of the alerts that are not fully sent (on
// channel, if given), by their status there: the worst of their deliveries'
// (see OverallStatus). Only deliveries in flight or dead are read, few
// however many alerts were ever sent.
func (a *Alerts) unsentByStatus(ctx context.Context, channel string) (map[string][]string, error) {
	filter := bson.D{{Key: "status", Value: bson.D{{Key: "$ne", Value: DeliverySent}}}}
	if channel != "" {
		filter = append(filter, bson.E{Key: "channel", Value: channel})
	}
	cur, err := a.deliveries.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "alertId", Value: 1}, {Key: "status", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("find deliveries: %w", err)
	}
	var ds []Delivery
	if err := cur.All(ctx, &ds); err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	perAlert := map[string][]Delivery{}
	for _, d := range ds {
		perAlert[d.AlertID] = append(perAlert[d.AlertID], d)
	}
	out := map[string][]string{}
	for id, dels := range perAlert {
		st := OverallStatus(dels)
		out[st] = append(out[st], id)
	}
	return out, nil
}

// alertStatus is al's overall status, or its delivery's on channel.
func alertStatus(al Alert, channel string) string {
	if channel == "" {
		return al.Status
	}
	for _, d := range al.Deliveries {
		if d.Channel == channel {
			return d.Status
		}
	}
	return ""
}

// attachDeliveries fills each alert's deliveries (in its channel order; a
// channel without a document yet is pending) and overall status.
func (a *Alerts) attachDeliveries(ctx context.Context, alerts []Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	ids := make([]string, 0, len(alerts))
	for _, al := range alerts {
		ids = append(ids, al.ID)
	}
	cur, err := a.deliveries.Find(ctx, bson.D{{Key: "alertId", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return fmt.Errorf("find deliveries: %w", err)
	}
	var ds []Delivery
	if err := cur.All(ctx, &ds); err != nil {
		return fmt.Errorf("read deliveries: %w", err)
	}
	byID := make(map[string]Delivery, len(ds))
	for _, d := range ds {
		byID[d.ID] = d
	}
	for i := range alerts {
		al := &alerts[i]
		al.Deliveries = make([]Delivery, 0, len(al.Channels))
		for _, ch := range al.Channels {
			d, ok := byID[DeliveryID(al.ID, ch)]
			if !ok {
				d = Delivery{ID: DeliveryID(al.ID, ch), AlertID: al.ID, Channel: ch, Status: DeliveryPending}
			}
			al.Deliveries = append(al.Deliveries, d)
		}
		al.Status = OverallStatus(al.Deliveries)
	}
	return nil
}

// OverallStatus is the worst status of an alert's deliveries: dead, then
// retrying, then pending; sent only when every channel has sent it.
func OverallStatus(ds []Delivery) string {
	rank := map[string]int{DeliverySent: 0, DeliveryPending: 1, DeliveryRetrying: 2, DeliveryDead: 3}
	worst := DeliverySent
	for _, d := range ds {
		if rank[d.Status] > rank[worst] {
			worst = d.Status
		}
	}
	return worst
}
