package readmodel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Ledger is the projections' bookkeeping in MongoDB: per-projection
// checkpoints (last contiguous sequence applied) and the poison messages
// they skipped. Every call has a deadline (CallTimeout).
type Ledger struct {
	checkpoints *mongo.Collection
	errors      *mongo.Collection
}

// NewLedger returns the ledger stored in db.
func NewLedger(db *mongo.Database) *Ledger {
	return &Ledger{checkpoints: db.Collection("checkpoints"), errors: db.Collection("projection_errors")}
}

// SetCheckpoint records seq for a projection, never moving it backwards.
func (l *Ledger) SetCheckpoint(ctx context.Context, projection string, seq uint64, now time.Time) error {
	ctx, cancel := withDeadline(ctx, CallTimeout)
	defer cancel()
	_, err := l.checkpoints.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: projection}},
		bson.D{
			{Key: "$max", Value: bson.D{{Key: "seq", Value: int64(seq)}}},
			{Key: "$set", Value: bson.D{{Key: "updatedAt", Value: now.UnixMilli()}}},
		},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("set checkpoint %s: %w", projection, err)
	}
	return nil
}

// Checkpoint returns a projection's checkpoint (0 if none).
func (l *Ledger) Checkpoint(ctx context.Context, projection string) (uint64, error) {
	ctx, cancel := withDeadline(ctx, CallTimeout)
	defer cancel()
	var doc struct {
		Seq int64 `bson:"seq"`
	}
	err := l.checkpoints.FindOne(ctx, bson.D{{Key: "_id", Value: projection}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read checkpoint %s: %w", projection, err)
	}
	return uint64(doc.Seq), nil
}

// ProjectionError is a message a projection skipped because it could never
// be applied.
type ProjectionError struct {
	ID         string `bson:"_id" json:"id"`
	Projection string `bson:"projection" json:"projection"`
	Seq        int64  `bson:"seq" json:"seq"`
	Subject    string `bson:"subject" json:"subject"`
	Reason     string `bson:"reason" json:"reason"`
	Data       string `bson:"data" json:"data"`
	At         int64  `bson:"at" json:"at"`
}

// RecordError stores a skipped message (idempotently, keyed by projection
// and sequence).
func (l *Ledger) RecordError(ctx context.Context, e ProjectionError) error {
	ctx, cancel := withDeadline(ctx, CallTimeout)
	defer cancel()
	e.ID = fmt.Sprintf("%s:%d", e.Projection, e.Seq)
	_, err := l.errors.ReplaceOne(ctx, bson.D{{Key: "_id", Value: e.ID}}, e, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("record projection error %s: %w", e.ID, err)
	}
	return nil
}

// Errors returns the recorded projection errors, newest sequence first.
func (l *Ledger) Errors(ctx context.Context, limit int) ([]ProjectionError, error) {
	ctx, cancel := withDeadline(ctx, CallTimeout)
	defer cancel()
	cur, err := l.errors.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("find projection errors: %w", err)
	}
	var out []ProjectionError
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("read projection errors: %w", err)
	}
	return out, nil
}
