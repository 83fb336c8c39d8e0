// Package replay rebuilds read models from the EVENTS stream without
// downtime: it fills a shadow generation from an ordered consumer while the
// live projector keeps serving, switches the generation pointer atomically
// once the shadow has caught up with the stream, and drops the old
// generation after a grace period. A replay only reads the stream and
// writes read models: it never publishes, so it never reaches the notifier
// or outbound webhooks.
package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// Projections a replay can rebuild.
const (
	History  = "history"
	Counters = "counters"
)

// Projections lists every projection a replay can rebuild, for `replay all`.
func Projections() []string { return []string{History, Counters} }

// Deps are the stores a replay works on.
type Deps struct {
	JetStream jetstream.JetStream
	Mongo     *mongo.Database
	Redis     redis.UniversalClient
	Log       *slog.Logger
}

// Options say what to replay and how.
type Options struct {
	Projections []string
	FromSeq     uint64    // start at this stream sequence (0: the first)
	FromTime    time.Time // or at the first event stored at/after this time
	Resume      bool      // continue an interrupted replay
	DryRun      bool      // plan only
	Grace       time.Duration
	BatchSize   int
	Owner       string // names this replay in its state
	// MinuteRetention must match the projector's PROJECTOR_MINUTE_RETENTION.
	MinuteRetention time.Duration
	// RecentMaxEvents must match the projector's PROJECTOR_RECENT_MAX_EVENTS
	// (the counters replay also fills the recent-events cache).
	RecentMaxEvents int
	// OnProgress is called after each batch (from the replay's goroutine).
	OnProgress func(Progress)
}

// Progress is a projection's replay position.
type Progress struct {
	Projection string
	Start      uint64 // first sequence of this run
	Position   uint64 // last sequence applied
	Head       uint64 // stream's last sequence when last checked
	Applied    int    // events applied in this run
	Phase      string // "replaying", "catching up after switch", "done"
}

// Plan is what a replay of one projection does.
type Plan struct {
	Projection     string `json:"projection"`
	LiveGeneration int64  `json:"liveGeneration"`
	NewGeneration  int64  `json:"newGeneration"`
	Target         string `json:"target"`
	FromSeq        uint64 `json:"fromSeq"`
	HeadSeq        uint64 `json:"headSeq"`
	Events         uint64 `json:"events"`
	Resume         bool   `json:"resume"`
	// Skip, when set, says why this projection is left alone.
	Skip string `json:"skip,omitempty"`
}

func (o *Options) validate() error {
	if len(o.Projections) == 0 {
		return errors.New("no projection to replay")
	}
	for _, p := range o.Projections {
		if p != History && p != Counters {
			return fmt.Errorf("unknown projection %q (want history, counters or all)", p)
		}
	}
	if o.FromSeq > 0 && !o.FromTime.IsZero() {
		return errors.New("give --from-seq or --from-time, not both")
	}
	if o.Resume && (o.FromSeq > 0 || !o.FromTime.IsZero()) {
		return errors.New("--resume continues where the interrupted replay stopped; it takes no --from-*")
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.Grace < 0 {
		return errors.New("grace must not be negative")
	}
	if o.MinuteRetention == 0 {
		o.MinuteRetention = 24 * time.Hour
	}
	if o.RecentMaxEvents <= 0 {
		o.RecentMaxEvents = readmodel.DefaultRecentMaxEvents
	}
	if o.Owner == "" {
		o.Owner = fmt.Sprintf("replay-%d", time.Now().UnixNano())
	}
	return nil
}

// Run plans the replays and, unless DryRun, runs them concurrently. On
// cancellation each replay stores an interrupted state that Resume continues.
func Run(ctx context.Context, deps Deps, opts Options) ([]Plan, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	stream, err := deps.JetStream.Stream(ctx, schemas.StreamName)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", schemas.StreamName, err)
	}
	states := newStateStore(deps.Mongo)
	runs := make([]*run, 0, len(opts.Projections))
	for _, name := range opts.Projections {
		r := &run{name: name, deps: deps, opts: opts, stream: stream, states: states, target: targetFor(name, deps, opts)}
		if err := r.plan(ctx); err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	if opts.Resume && slices.ContainsFunc(runs, func(r *run) bool { return r.p.Skip == "" }) {
		// The interrupted command was cancelled before one of its
		// replays stored a state (it waited for the counters' lease, say):
		// resuming the command starts that one afresh.
		fresh := opts
		fresh.Resume = false
		for _, r := range runs {
			if r.neverRan {
				r.opts = fresh
				if err := r.plan(ctx); err != nil {
					return nil, err
				}
			}
		}
	}
	plans := make([]Plan, len(runs))
	active := 0
	for i, r := range runs {
		plans[i] = r.p
		if r.p.Skip == "" {
			active++
		}
	}
	if active == 0 && opts.Resume {
		return plans, errors.New("nothing to resume: no replay was interrupted")
	}
	if opts.DryRun {
		return plans, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range runs {
		if r.p.Skip == "" {
			g.Go(func() error { return r.run(gctx) })
		}
	}
	return plans, g.Wait()
}

func targetFor(name string, deps Deps, opts Options) target {
	if name == Counters {
		// full, resumed and writeFrom are settled by the plan.
		return &countersTarget{rdb: deps.Redis, retention: opts.MinuteRetention, recentMax: opts.RecentMaxEvents}
	}
	return historyTarget{db: deps.Mongo}
}
