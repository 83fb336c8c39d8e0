package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Pruner deletes the delivery log's finished records (succeeded or dead)
// last changed more than Retention ago; a delivery still retrying stays.
// FerretDB v1 has no TTL index, so retention is done here.
type Pruner struct {
	Log       *Log
	Retention time.Duration
	Logger    *slog.Logger
}

// Run prunes every tenth of the retention (at most hourly) until ctx is
// done.
func (p *Pruner) Run(ctx context.Context) error {
	t := time.NewTicker(min(max(p.Retention/10, 100*time.Millisecond), time.Hour))
	defer t.Stop()
	for {
		if n, err := p.Prune(ctx, time.Now()); err != nil && ctx.Err() == nil {
			p.Logger.Warn("webhooks: prune the delivery log", "err", err)
		} else if n > 0 {
			p.Logger.Debug("webhooks: pruned the delivery log", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Prune deletes the finished records last changed before now-Retention
// and returns how many.
func (p *Pruner) Prune(ctx context.Context, now time.Time) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := p.Log.coll.DeleteMany(ctx, bson.D{
		{Key: "updatedAt", Value: bson.D{{Key: "$lt", Value: now.Add(-p.Retention).UnixMilli()}}},
		{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{StatusSucceeded, StatusDead}}}},
	})
	if err != nil {
		return 0, fmt.Errorf("prune deliveries: %w", err)
	}
	return res.DeletedCount, nil
}
