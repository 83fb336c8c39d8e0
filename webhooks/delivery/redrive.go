package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// ErrNotDead is returned when redriving a delivery that is not dead.
var ErrNotDead = errors.New("only dead deliveries can be redriven")

// Redriver queues dead deliveries again, each with a fresh schedule and
// its original webhook id.
type Redriver struct {
	JetStream jetstream.JetStream
	Log       *Log
}

// One redrives one delivery.
func (r *Redriver) One(ctx context.Context, id string) error {
	rec, err := r.Log.Get(ctx, id)
	if err != nil {
		return err
	}
	if rec.Status != StatusDead || rec.Job == nil {
		return ErrNotDead
	}
	return r.redrive(ctx, rec)
}

// Many redrives the dead deliveries of q (q.Status is forced to dead) and
// returns how many it queued. It finds their ids, then loads and queues
// one delivery at a time: a dead delivery keeps its body, and loading
// every one at once held all of them in memory.
func (r *Redriver) Many(ctx context.Context, q Query) (int, error) {
	q.Status = StatusDead
	ids, err := r.Log.IDs(ctx, q)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		rec, err := r.Log.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // pruned meanwhile
		}
		if err != nil {
			return n, err
		}
		if rec.Status != StatusDead || rec.Job == nil {
			continue // redriven meanwhile
		}
		if err := r.redrive(ctx, rec); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// redrive marks the delivery retrying, then queues the job (a repeat of
// the same redrive is a duplicate the stream drops). The mark comes first:
// FerretDB applies concurrent updates of one document last-writer-wins, so
// marking after the worker recorded the outcome could erase it.
func (r *Redriver) redrive(ctx context.Context, rec *Record) error {
	job := *rec.Job
	job.Redrive = rec.AttemptCount
	msg := job.msg()
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if err := r.mark(ctx, rec.ID, StatusDead, StatusRetrying, "redriven"); err != nil {
		return fmt.Errorf("redrive %s: %w", rec.ID, err)
	}
	if _, err := r.JetStream.PublishMsg(ctx, msg); err != nil {
		_ = r.mark(ctx, rec.ID, StatusRetrying, StatusDead, rec.Reason)
		return fmt.Errorf("redrive %s: %w", rec.ID, err)
	}
	return nil
}

func (r *Redriver) mark(ctx context.Context, id, from, to, reason string) error {
	now := time.Now().UnixMilli()
	_, err := r.Log.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "status", Value: from}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "status", Value: to}, {Key: "nextAttemptAt", Value: now},
			{Key: "reason", Value: reason}, {Key: "updatedAt", Value: now},
		}}})
	return err
}
