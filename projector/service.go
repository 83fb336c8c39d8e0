// Package projector is the projector service: durable JetStream consumers
// that build the MongoDB history and the Redis counters from the EVENTS
// stream, idempotently, with checkpoints, lag metrics and an automatic
// rebuild of counters lost with a flushed Redis.
package projector

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/projector/internal/consume"
	"github.com/kilnhq/kiln/projector/internal/metrics"
	"github.com/kilnhq/kiln/projector/internal/streamread"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// Deps are what the projector runs on.
type Deps struct {
	JetStream jetstream.JetStream
	Mongo     *mongo.Database
	Redis     redis.UniversalClient
	Metrics   prometheus.Registerer
	Log       *slog.Logger
	// Tracer records the projections' spans; nil is no tracing.
	Tracer trace.TracerProvider
}

// Service runs the projections.
type Service struct {
	cfg      Config
	deps     Deps
	stream   jetstream.Stream
	history  *readmodel.History
	counters *readmodel.Counters
	recent   *readmodel.Recent
	ledger   *readmodel.Ledger
	metrics  *metrics.Projector
	owner    string // names this process in the rebuild lease
	rebuild  chan struct{}
	// recentRebuild kicks a rebuild of the recent-events cache (recent.go).
	recentRebuild chan struct{}
	// lastCheckpoint is the checkpoint last written, by projection (watch
	// goroutine only).
	lastCheckpoint map[string]uint64
	// warns rate-limits the housekeeping loops' repeated warnings.
	warns limitedLog
	// health tracks each projection's store outages (health.go).
	healthMu sync.Mutex
	health   map[string]*consume.Health
	// statusKV and statusSent: the status bucket and what was last
	// published to it (watch goroutine only; health.go).
	statusKV   jetstream.KeyValue
	statusSent map[string]statusSent
	// replayFetch, when set, stands between the counters rebuild's reader
	// and each read (tests).
	replayFetch streamread.Fetcher
	// noFailoverCheck turns the verification after a Redis failover off
	// (tests: showing what it repairs).
	noFailoverCheck bool
	// wrap lets tests interpose on a projection (crash simulations).
	wrap func(name string, p consume.Projection) consume.Projection
}

// New prepares indexes and returns the service. It waits for the EVENTS
// stream, which ingest creates.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	stream, err := schemas.WaitForStream(ctx, deps.JetStream, deps.Log)
	if err != nil {
		return nil, fmt.Errorf("projector: %w", err)
	}
	owner := processName()
	durable := readmodel.Durability{Replicas: cfg.RedisWaitReplicas, Timeout: cfg.RedisWaitTimeout}
	s := &Service{
		cfg:      cfg,
		deps:     deps,
		stream:   stream,
		history:  readmodel.FollowHistory(deps.Mongo),
		counters: readmodel.FollowCounters(deps.Redis, readmodel.CountersOptions{MinuteRetention: cfg.MinuteRetention, MarkRebuildWhenFresh: true, Durability: durable}),
		ledger:   readmodel.NewLedger(deps.Mongo),
		metrics:  metrics.New(deps.Metrics),
		owner:    owner,
		rebuild:  make(chan struct{}, 1),
		recent:   readmodel.FollowRecent(deps.Redis, readmodel.RecentOptions{MaxEvents: cfg.RecentMaxEvents, Durability: durable}),

		recentRebuild: make(chan struct{}, 1),

		lastCheckpoint: map[string]uint64{},
	}
	if err := s.history.EnsureIndexes(ctx); err != nil {
		return nil, fmt.Errorf("projector: %w", err)
	}
	return s, nil
}

func processName() string {
	host, _ := os.Hostname()
	return host + ":" + strconv.Itoa(os.Getpid()) + ":" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// Run runs both projections and their housekeeping until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return consume.Run(ctx, s.spec(History, historyProjection{s.history}))
	})
	g.Go(func() error {
		return consume.Run(ctx, s.spec(Counters, countersProjection{c: s.counters, onFresh: s.countersLost}))
	})
	g.Go(func() error {
		return consume.Run(ctx, s.spec(Recent, recentProjection{r: s.recent, onFresh: s.kickRecentRebuild}))
	})
	g.Go(func() error { return s.recentRebuildLoop(ctx) })
	g.Go(func() error { return s.runOrders(ctx) })
	g.Go(func() error { return s.watch(ctx) })
	g.Go(func() error { return s.rebuildLoop(ctx) })
	return g.Wait()
}

func (s *Service) spec(name string, p consume.Projection) consume.Spec {
	if s.wrap != nil {
		p = s.wrap(name, p)
	}
	return consume.Spec{
		Stream:      s.stream,
		Durable:     Durable(name),
		Projection:  p,
		Poison:      poisonRecorder{ledger: s.ledger, projection: name},
		Observe:     s.metrics.For(name),
		Log:         s.deps.Log,
		Dependency:  dependencyOf(name),
		Health:      s.healthOf(name),
		BatchSize:   s.cfg.BatchSize,
		AckWait:     s.cfg.AckWait,
		MaxDeliver:  s.cfg.MaxDeliver,
		PoisonAfter: s.cfg.PoisonAfter,
		Tracer:      s.deps.Tracer,
	}
}

// Durable is the durable consumer name of a projection.
func Durable(projection string) string { return "projector-" + projection }
