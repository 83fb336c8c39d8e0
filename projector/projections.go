package projector

import (
	"context"
	"errors"
	"time"

	"github.com/kilnhq/kiln/projector/internal/consume"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// Projection names; the durable consumers are "projector-<name>".
const (
	History  = "history"
	Counters = "counters"
)

// historyProjection writes the MongoDB history.
type historyProjection struct{ h *readmodel.History }

func (p historyProjection) Apply(ctx context.Context, events []schemas.Event) error {
	_, err := p.h.Apply(ctx, events)
	if errors.Is(err, readmodel.ErrUnstorable) {
		return consume.Unprojectable(err)
	}
	return err // a store error: retried until the store answers
}

// countersProjection writes the Redis counters and notices a lost Redis.
type countersProjection struct {
	c       *readmodel.Counters
	onFresh func(ctx context.Context)
}

func (p countersProjection) Apply(ctx context.Context, events []schemas.Event) error {
	res, err := p.c.Apply(ctx, events, time.Now())
	if err == nil && res.Fresh {
		p.onFresh(ctx)
	}
	return err
}

// poisonRecorder keeps skipped messages in projection_errors.
type poisonRecorder struct {
	ledger     *readmodel.Ledger
	projection string
}

func (r poisonRecorder) RecordPoison(ctx context.Context, p consume.Poison) error {
	return r.ledger.RecordError(ctx, readmodel.ProjectionError{
		Projection: r.projection, Seq: int64(p.Seq), Subject: p.Subject,
		Reason: p.Reason, Data: string(p.Data), At: time.Now().UnixMilli(),
	})
}
