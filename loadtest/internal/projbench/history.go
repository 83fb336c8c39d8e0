package projbench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/loadtest/internal/stats"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// Scratch collections, in the read models' database.
const (
	HistoryEvents  = "bench_events"     // History.Apply writes here
	BaselineEvents = "bench_insertmany" // the InsertMany baseline
)

// Timing is what one measurement took: the projection code's writes and
// the baseline's raw writes of the same events, each summed over batches.
type Timing struct {
	Events   int
	Measured time.Duration
	Baseline time.Duration
}

// Rates returns events/s of the projection code and of the baseline.
func (t Timing) Rates() (measured, baseline float64) {
	n := int64(t.Events)
	return stats.PerSecond(n, t.Measured), stats.PerSecond(n, t.Baseline)
}

// Interleave runs fresh batches of batch events through apply and base,
// alternating which goes first, until d has passed (at least two batches),
// and sums each one's time. Each batch is synthesized before either runs.
func Interleave(ctx context.Context, batch int, d time.Duration,
	apply, base func(context.Context, []schemas.Event) error) (Timing, error) {
	var t Timing
	start := time.Now()
	seq := uint64(1)
	for i := 0; i < 2 || time.Since(start) < d; i++ {
		if err := ctx.Err(); err != nil {
			return t, err
		}
		b := Synthesize(batch, seq, time.Now())
		seq += uint64(batch)
		timed := func(f func(context.Context, []schemas.Event) error, sum *time.Duration) error {
			s := time.Now()
			err := f(ctx, b)
			*sum += time.Since(s)
			return err
		}
		var err error
		if i%2 == 0 {
			err = errors.Join(timed(apply, &t.Measured), timed(base, &t.Baseline))
		} else {
			err = errors.Join(timed(base, &t.Baseline), timed(apply, &t.Measured))
		}
		if err != nil {
			return t, err
		}
		t.Events += len(b)
	}
	return t, nil
}

// MeasureHistory applies fresh batches with readmodel's History.Apply to
// scratch collections with the live history's indexes and, before or after
// each batch (alternating), inserts the same documents with an unordered
// InsertMany into another scratch collection with the same indexes, for
// about d. The ratio is then the projection code's cost over the store's
// (document conversion, duplicate handling, deadlines), not the
// indexes'. Every scratch collection is dropped before and after.
func MeasureHistory(ctx context.Context, db *mongo.Database, batch int, d time.Duration) (t Timing, err error) {
	if err := drop(ctx, db, HistoryEvents); err != nil {
		return t, err
	}
	defer func() { err = errors.Join(err, drop(context.WithoutCancel(ctx), db, HistoryEvents)) }()
	h := readmodel.NewHistory(db, readmodel.Collections{Events: HistoryEvents})
	if err := h.EnsureIndexes(ctx); err != nil {
		return t, err
	}
	base, err := NewInsertMany(ctx, db)
	if err != nil {
		return t, err
	}
	defer func() { err = errors.Join(err, base.Drop(context.WithoutCancel(ctx))) }()
	return Interleave(ctx, batch, d,
		func(ctx context.Context, b []schemas.Event) error {
			res, err := h.Apply(ctx, b)
			if err == nil && res.Inserted != len(b) {
				err = fmt.Errorf("history apply inserted %d of %d new events", res.Inserted, len(b))
			}
			return err
		},
		func(ctx context.Context, b []schemas.Event) error { return base.Insert(ctx, Docs(b)) })
}

// InsertMany is the history baseline: a scratch collection with the live
// history's indexes, written with unordered InsertMany.
type InsertMany struct {
	db   *mongo.Database
	coll *mongo.Collection
}

// NewInsertMany drops what an earlier run may have left and creates the
// scratch collection with the history's indexes.
func NewInsertMany(ctx context.Context, db *mongo.Database) (*InsertMany, error) {
	if err := drop(ctx, db, BaselineEvents); err != nil {
		return nil, err
	}
	c := readmodel.Collections{Events: BaselineEvents}
	if err := readmodel.NewHistory(db, c).EnsureIndexes(ctx); err != nil {
		return nil, fmt.Errorf("baseline indexes: %w", err)
	}
	return &InsertMany{db: db, coll: db.Collection(BaselineEvents)}, nil
}

// Insert writes docs with one unordered InsertMany.
func (b *InsertMany) Insert(ctx context.Context, docs []any) error {
	if _, err := b.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
		return fmt.Errorf("baseline insert of %d documents: %w", len(docs), err)
	}
	return nil
}

// Run inserts docs in batches, one after the other, and returns the time
// the inserts took.
func (b *InsertMany) Run(ctx context.Context, docs []any, batch int) (time.Duration, error) {
	var took time.Duration
	for _, part := range split(docs, batch) {
		start := time.Now()
		if err := b.Insert(ctx, part); err != nil {
			return took, err
		}
		took += time.Since(start)
	}
	return took, nil
}

// Drop removes the scratch collections.
func (b *InsertMany) Drop(ctx context.Context) error {
	return drop(ctx, b.db, BaselineEvents)
}

func drop(ctx context.Context, db *mongo.Database, names ...string) error {
	for _, name := range names {
		if err := db.Collection(name).Drop(ctx); err != nil {
			return fmt.Errorf("drop scratch collection %s: %w", name, err)
		}
	}
	return nil
}
