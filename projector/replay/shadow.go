package replay

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// target is one projection as a replay sees it: where its generations live
// and how to fill and switch one.
type target interface {
	// live returns the live generation.
	live(ctx context.Context) (int64, error)
	// describe names a generation's storage, for plans and logs.
	describe(gen int64) string
	// open prepares a generation for writing and returns its writer.
	open(ctx context.Context, gen int64) (func(context.Context, []schemas.Event) error, error)
	// switchTo makes gen live at sequence pos.
	switchTo(ctx context.Context, gen, previous int64, pos uint64, dropAfter time.Time) error
	// drop deletes a generation that is not live.
	drop(ctx context.Context, gen int64) error
	// planned tells the target what the replay will do, before open.
	planned(st State, p Plan)
}

type historyTarget struct{ db *mongo.Database }

func (t historyTarget) live(ctx context.Context) (int64, error) {
	return readmodel.HistoryGeneration(ctx, t.db)
}

func (t historyTarget) describe(gen int64) string {
	return "collection " + readmodel.CollectionsFor(gen).Events
}

func (t historyTarget) open(ctx context.Context, gen int64) (func(context.Context, []schemas.Event) error, error) {
	h := readmodel.NewHistory(t.db, readmodel.CollectionsFor(gen))
	if err := h.EnsureIndexes(ctx); err != nil {
		return nil, err
	}
	return func(ctx context.Context, evs []schemas.Event) error {
		_, err := h.Apply(ctx, evs)
		return err
	}, nil
}

func (t historyTarget) switchTo(ctx context.Context, gen, previous int64, _ uint64, dropAfter time.Time) error {
	return readmodel.SwitchHistory(ctx, t.db, gen, previous, dropAfter)
}

func (t historyTarget) drop(ctx context.Context, gen int64) error {
	return readmodel.DropHistory(ctx, t.db, gen)
}

func (historyTarget) planned(State, Plan) {}

// countersTarget is the Redis generation: the counters and, under the same
// key prefix, the recent-events cache (they switch together).
type countersTarget struct {
	rdb       redis.UniversalClient
	retention time.Duration
	recentMax int
	// full: the replay started at the stream's first event (when it was
	// resumed: the replay it continues did), so the shadow's recent-events
	// cache is complete at the switch. Its cache is then built in memory
	// (readmodel.RecentBuild) and written just before the switch, unless
	// recentMax is above buildMax; a resumed one reads the stream again
	// from the start (see run.plan).
	full bool
	// build is the cache being built in memory until the switch writes it
	// (nil: the events go to the shadow's cache as they come).
	build *readmodel.RecentBuild
	// counts are the counters being built in memory until the switch
	// writes them (nil: the events go to the shadow's counters as they
	// come). They are built when the cache is.
	counts *readmodel.CountersBuild
	// writeFrom is the first sequence whose cache entries are written as
	// the batches come (readmodel.RecentBuild.WriteFrom), overlapping the
	// stream's read: the last recentMax events of the stream as planned.
	writeFrom uint64
	// resumed: the shadow may hold an earlier attempt's cache, which a
	// build empties first (the events it wrote may not be the newest now).
	resumed bool
}

// buildMax is the largest cache built in memory (PROJECTOR_RECENT_MAX_EVENTS
// events rendered: ~0.4 KB each); a larger one is written as it comes.
const buildMax = 1_000_000

// planned settles how the shadow's cache is filled.
func (t *countersTarget) planned(st State, p Plan) {
	t.full, t.resumed = st.Full, p.Resume
	t.writeFrom = 0
	if p.HeadSeq >= uint64(t.recentMax) {
		t.writeFrom = p.HeadSeq - uint64(t.recentMax) + 1
	}
}

func (t *countersTarget) live(ctx context.Context) (int64, error) {
	return readmodel.CountersGeneration(ctx, t.rdb)
}

func (t *countersTarget) describe(gen int64) string {
	return "redis keys " + readmodel.PrefixFor(gen) + "* and " + readmodel.RecentPrefixFor(readmodel.PrefixFor(gen)) + "*"
}

func (t *countersTarget) counters(gen int64) *readmodel.Counters {
	return readmodel.NewCounters(t.rdb, readmodel.CountersOptions{Prefix: readmodel.PrefixFor(gen), MinuteRetention: t.retention})
}

func (t *countersTarget) recent(gen int64) *readmodel.Recent {
	return readmodel.NewRecent(t.rdb, readmodel.RecentOptions{Prefix: readmodel.PrefixFor(gen), MaxEvents: t.recentMax})
}

func (t *countersTarget) open(ctx context.Context, gen int64) (func(context.Context, []schemas.Event) error, error) {
	c, rc := t.counters(gen), t.recent(gen)
	if t.buildsInMemory() {
		if t.resumed {
			// The earlier attempt's writes: a build counts and caches
			// every event again.
			if err := readmodel.DropCounters(ctx, t.rdb, gen); err != nil {
				return nil, err
			}
		}
		t.build = rc.NewBuild()
		t.build.WriteFrom(t.writeFrom)
		t.counts = c.NewBuild()
	}
	return func(ctx context.Context, evs []schemas.Event) error {
		if t.counts != nil {
			// Before the switch: both in memory, but for the cache's
			// newest events, whose hashes are written as they come.
			t.counts.Add(evs, time.Now())
			if err := t.build.Add(evs); err != nil {
				return err
			}
			return t.build.Flush(ctx)
		}
		// Two writes in flight: the cache's events are rendered and
		// written while Redis runs the counters' script. Both are
		// idempotent, so a retry after one of them failed counts nothing
		// twice.
		var g errgroup.Group
		g.Go(func() error {
			_, err := c.Apply(ctx, evs, time.Now())
			return err
		})
		_, err := rc.Apply(ctx, evs, time.Now())
		return errors.Join(err, g.Wait())
	}, nil
}

// buildsInMemory reports whether the shadow's cache is built in memory.
func (t *countersTarget) buildsInMemory() bool { return t.full && t.recentMax <= buildMax }

func (t *countersTarget) switchTo(ctx context.Context, gen, _ int64, pos uint64, _ time.Time) error {
	if t.build != nil {
		// The events after the switch go to the cache as they come.
		if err := t.build.Write(ctx); err != nil {
			return err
		}
		t.build = nil
	}
	if t.counts != nil {
		// The events after the switch are counted as they come.
		if err := t.counts.Write(ctx, time.Now()); err != nil {
			return err
		}
		t.counts = nil
	}
	// The shadow's checkpoint says how far it is exact; the live projector
	// moves it on from there.
	if err := t.counters(gen).SetCheckpoint(ctx, pos); err != nil {
		return err
	}
	if t.full {
		// Otherwise the live projector rebuilds the cache after the switch
		// (and GET /events reads MongoDB meanwhile).
		rc := t.recent(gen)
		epoch, _, err := rc.Start(ctx, time.Now())
		if err != nil {
			return err
		}
		if _, err := rc.MarkComplete(ctx, epoch); err != nil {
			return err
		}
	}
	return readmodel.SwitchCounters(ctx, t.rdb, gen)
}

func (t *countersTarget) drop(ctx context.Context, gen int64) error {
	return readmodel.DropCounters(ctx, t.rdb, gen)
}
