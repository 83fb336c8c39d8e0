package readmodel

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/schemas"
)

// OrdersCollection holds the orders read model: one document per order,
// built from the order.* events.
const OrdersCollection = "orders"

// OrderTypePrefix starts the type of every event the orders read model
// reads; order.chat carries no status and is left out.
const OrderTypePrefix = "order."

// orderWriteChunk bounds one BulkWrite: FerretDB v1 holds a SQLite
// connection per matching upsert until the command ends.
const orderWriteChunk = 50

// Order is one order as the read model serves it.
type Order struct {
	ID            string
	CustomerEmail string
	Amount        float64
	Currency      string
	Status        string
	Notes         string
	CreatedAt     string // as the order.created event gave it
	// Seq is the stream sequence of the event that set Status.
	Seq uint64
}

// orderDoc is an order document. Statuses maps the stream sequence (in
// decimal) of every status-carrying event to its status, and the current
// status is the one of the highest sequence. Setting a map entry is
// idempotent and commutes with every other write, so redelivery, replay out
// of order and two projectors all give the same document, and every write
// filters by _id alone (the only filter FerretDB v1 pushes down).
type orderDoc struct {
	ID            string            `bson:"_id"`
	CustomerEmail string            `bson:"customerEmail,omitempty"`
	Amount        float64           `bson:"amount,omitempty"`
	Currency      string            `bson:"currency,omitempty"`
	Notes         string            `bson:"notes,omitempty"`
	CreatedAt     string            `bson:"createdAt,omitempty"`
	Statuses      map[string]string `bson:"statuses,omitempty"`
}

// orderMeta is the part of an order.* event's metadata the model reads.
type orderMeta struct {
	ID            string          `json:"id"`
	Status        string          `json:"status"`
	Amount        *float64        `json:"amount"`
	Currency      string          `json:"currency"`
	CustomerEmail string          `json:"customerEmail"`
	Notes         string          `json:"notes"`
	CreatedAt     json.RawMessage `json:"createdAt"`
}

// Orders is the orders read model.
type Orders struct{ coll *mongo.Collection }

// NewOrders returns the orders read model stored in db.
func NewOrders(db *mongo.Database) *Orders {
	return &Orders{coll: db.Collection(OrdersCollection)}
}

// Apply writes the order.* events among events (with Seq set); others are
// skipped, and so are order events without metadata.id.
func (o *Orders) Apply(ctx context.Context, events []schemas.Event) error {
	var models []mongo.WriteModel
	for _, ev := range events {
		if !strings.HasPrefix(ev.EventType, OrderTypePrefix) || len(ev.Metadata) == 0 {
			continue
		}
		var m orderMeta
		if json.Unmarshal(ev.Metadata, &m) != nil || m.ID == "" {
			continue
		}
		set := bson.D{}
		if ev.EventType == "order.created" {
			set = append(set,
				bson.E{Key: "customerEmail", Value: m.CustomerEmail},
				bson.E{Key: "currency", Value: m.Currency},
				bson.E{Key: "notes", Value: m.Notes},
				bson.E{Key: "createdAt", Value: createdAtText(m.CreatedAt)})
			if m.Amount != nil {
				set = append(set, bson.E{Key: "amount", Value: *m.Amount})
			}
		}
		if m.Status != "" {
			set = append(set, bson.E{Key: "statuses." + strconv.FormatUint(ev.Seq, 10), Value: m.Status})
		}
		if len(set) == 0 {
			continue
		}
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: m.ID}}).
			SetUpdate(bson.D{{Key: "$set", Value: set}}).
			SetUpsert(true))
	}
	for chunk := range slices.Chunk(models, orderWriteChunk) {
		if _, err := o.coll.BulkWrite(ctx, chunk, options.BulkWrite().SetOrdered(false)); err != nil {
			return fmt.Errorf("write %d orders: %w", len(chunk), err)
		}
	}
	return nil
}

// createdAtText keeps a string createdAt as it is and writes a number (ms)
// in decimal.
func createdAtText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// List returns the orders whose current status is status (every order when
// status is empty), oldest first by creation sequence. It reads the whole
// collection: FerretDB v1 filters in Go over every document anyway, and the
// model holds one small document per order.
func (o *Orders) List(ctx context.Context, status string) ([]Order, error) {
	cur, err := o.coll.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	var docs []orderDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	out := make([]Order, 0, len(docs))
	for _, d := range docs {
		ord := d.order()
		if status == "" || ord.Status == status {
			out = append(out, ord)
		}
	}
	slices.SortFunc(out, func(a, b Order) int { return strings.Compare(a.CreatedAt+a.ID, b.CreatedAt+b.ID) })
	return out, nil
}

// Get returns one order; found is false when the model has none.
func (o *Orders) Get(ctx context.Context, id string) (ord Order, found bool, err error) {
	var d orderDoc
	err = o.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if err == mongo.ErrNoDocuments {
		return Order{}, false, nil
	}
	if err != nil {
		return Order{}, false, fmt.Errorf("get order %s: %w", id, err)
	}
	return d.order(), true, nil
}

func (d orderDoc) order() Order {
	ord := Order{ID: d.ID, CustomerEmail: d.CustomerEmail, Amount: d.Amount, Currency: d.Currency,
		Notes: d.Notes, CreatedAt: d.CreatedAt}
	for k, s := range d.Statuses {
		if seq, err := strconv.ParseUint(k, 10, 64); err == nil && seq >= ord.Seq {
			ord.Seq, ord.Status = seq, s
		}
	}
	return ord
}
