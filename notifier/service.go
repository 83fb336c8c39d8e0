// Package notifier is the notifier service: it evaluates live events against
// alert rules, decides each alert once, and delivers it to Slack, email or
// the log with retries, a dead-letter stream and redrive. See docs/operations.md's
// Notifier section (and notifier/README.md) for the guarantees and their one unavoidable gap.
package notifier

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/notifier/internal/alertstore"
	"github.com/kilnhq/kiln/notifier/internal/channel"
	"github.com/kilnhq/kiln/notifier/internal/decide"
	"github.com/kilnhq/kiln/notifier/internal/delivery"
	"github.com/kilnhq/kiln/notifier/internal/evaluate"
	"github.com/kilnhq/kiln/notifier/internal/jobs"
	"github.com/kilnhq/kiln/notifier/internal/lease"
	"github.com/kilnhq/kiln/notifier/internal/metrics"
	"github.com/kilnhq/kiln/notifier/internal/rules"
	"github.com/kilnhq/kiln/schemas"
)

//go:embed rules.example.yaml
var exampleRules []byte

// ExampleRules returns the example rules file built into the binary, used
// when NOTIFIER_RULES_FILE is unset.
func ExampleRules() []byte { return append([]byte(nil), exampleRules...) }

// Deps are what the notifier runs on.
type Deps struct {
	JetStream jetstream.JetStream
	Mongo     *mongo.Database
	Metrics   prometheus.Registerer
	Log       *slog.Logger
	// Tracer records the evaluation, decision and delivery spans; nil is
	// no tracing.
	Tracer trace.TracerProvider
}

// Service is the notifier.
type Service struct {
	cfg      Config
	deps     Deps
	rules    *rules.Set
	channels map[string]channel.Channel
	events   jetstream.Stream
	store    *alertstore.Store
	metrics  *metrics.Notifier
	lease    *lease.Lease
	// crash lets tests stop the service at a named point (see decide.Crash).
	crash func(point, id string) bool
	// abandon, set by tests, makes a stop keep the lease as a killed
	// process does, instead of releasing it.
	abandon atomic.Bool
}

// New loads and checks the rules, sets up the channels, the ALERTS and
// ALERTS_DLQ streams and the alert indexes. An invalid rules file fails
// here, naming each bad rule and field. It waits for the EVENTS stream,
// which ingest creates.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	set, err := loadRules(cfg)
	if err != nil {
		return nil, err
	}
	chans, err := newChannels(cfg, deps.Log)
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	events, err := schemas.WaitForStream(ctx, deps.JetStream, deps.Log)
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	if _, err := schemas.Setup(ctx, deps.Log, "notifier job streams", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, jobs.EnsureStreams(ctx, deps.JetStream, cfg.StreamReplicas)
	}); err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	kv, err := schemas.Setup(ctx, deps.Log, lease.Bucket, func(ctx context.Context) (jetstream.KeyValue, error) {
		return lease.Open(ctx, deps.JetStream, cfg.LeaseTTL, cfg.StreamReplicas)
	})
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	store := alertstore.New(deps.Mongo)
	if err := store.EnsureIndexes(ctx); err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	deps.Log.Info("notifier rules loaded", "file", rulesSource(cfg), "rules", ruleNames(set), "channels", cfg.Channels())
	return &Service{cfg: cfg, deps: deps, rules: set, channels: chans, events: events, store: store,
		metrics: metrics.New(deps.Metrics),
		lease:   &lease.Lease{KV: kv, TTL: cfg.LeaseTTL, Holder: holderName(), Log: deps.Log}}, nil
}

// CheckRules reads and checks the rules cfg names, as New does, and returns
// their names.
func CheckRules(cfg Config) ([]string, error) {
	set, err := loadRules(cfg)
	if err != nil {
		return nil, err
	}
	return ruleNames(set), nil
}

func ruleNames(set *rules.Set) []string {
	names := make([]string, 0, len(set.Rules))
	for _, r := range set.Rules {
		names = append(names, r.Name)
	}
	return names
}

// loadRules reads and checks the rules cfg names (the built-in example
// when NOTIFIER_RULES_FILE is unset) against the configured channels.
func loadRules(cfg Config) (*rules.Set, error) {
	opts := rules.Options{Channels: cfg.Channels()}
	if cfg.RulesFile == "" {
		set, err := rules.Parse(exampleRules, opts)
		if err != nil {
			return nil, fmt.Errorf("notifier: built-in rules: %w", err)
		}
		return set, nil
	}
	set, err := rules.Load(cfg.RulesFile, opts)
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	return set, nil
}

func rulesSource(cfg Config) string {
	if cfg.RulesFile == "" {
		return "built-in rules.example.yaml"
	}
	return cfg.RulesFile
}

func newChannels(cfg Config, log *slog.Logger) (map[string]channel.Channel, error) {
	out := map[string]channel.Channel{channel.Log: channel.NewLog(log)}
	if cfg.SlackWebhookURL != "" {
		slack, err := channel.NewSlack(cfg.SlackWebhookURL.Reveal(), cfg.SendTimeout)
		if err != nil {
			return nil, err
		}
		out[channel.Slack] = slack
	}
	if cfg.SMTPHost != "" {
		email, err := channel.NewEmail(cfg.email())
		if err != nil {
			return nil, err
		}
		out[channel.Email] = email
	}
	return out, nil
}

// Run stands by until this process holds the lease, then consumes events
// and delivers alerts while it holds it, until ctx is done. A process that
// loses the lease stops working before another can take it, and stands by
// again; a process that stops releases the lease, so a standby takes over
// at once.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.lead(ctx) })
	g.Go(func() error { return s.watch(ctx) })
	return g.Wait()
}

// lead alternates standing by and being active until ctx is done or the
// active work fails.
func (s *Service) lead(ctx context.Context) error {
	for {
		s.metrics.Active.Set(0)
		if err := s.lease.Acquire(ctx); err != nil {
			return nil // ctx done
		}
		s.metrics.Active.Set(1)
		s.deps.Log.Info("notifier active", "holder", s.lease.Holder)
		err := s.active(ctx)
		s.metrics.Active.Set(0)
		if errors.Is(err, lease.ErrLost) && ctx.Err() == nil {
			s.deps.Log.Warn("notifier stopped evaluating, standing by", "holder", s.lease.Holder, "err", err)
			continue
		}
		if !s.abandon.Load() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if rerr := s.lease.Release(rctx); rerr != nil {
				s.deps.Log.Warn("notifier lease not released: a standby takes over when it expires", "err", rerr)
			}
			cancel()
		}
		return err
	}
}

// active runs the event consumer, with windows rebuilt from the stream as
// after a restart, and the delivery workers, while the lease is held. It
// returns lease.ErrLost when the lease was lost, nil when ctx is done.
func (s *Service) active(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.lease.Hold(ctx) })
	consumer := &decide.Consumer{
		Events: s.events, JetStream: s.deps.JetStream, Store: s.store, Engine: evaluate.New(s.rules),
		Metrics: s.metrics, Log: s.deps.Log, AckWait: s.cfg.AckWait, Crash: s.crash, Tracer: s.deps.Tracer,
	}
	g.Go(func() error { return consumer.Run(ctx) })
	for name, ch := range s.channels {
		w := &delivery.Worker{
			Name: name, Channel: ch, JetStream: s.deps.JetStream, Store: s.store, Metrics: s.metrics,
			Log: s.deps.Log, Crash: s.crash, Tracer: s.deps.Tracer,
			Config: delivery.Config{
				MaxAttempts: s.cfg.MaxAttempts, BackoffBase: s.cfg.BackoffBase, BackoffMax: s.cfg.BackoffMax,
				AckWait: s.cfg.AckWait, SendTimeout: s.cfg.SendTimeout, Concurrency: s.cfg.Concurrency,
			},
		}
		g.Go(func() error { return w.Run(ctx) })
	}
	return g.Wait()
}

// holderName names this process in the lease: host, pid and a random part.
func holderName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), nuid.Next()[:8])
}

// watchEvery is how often the dead-letter and lag gauges are refreshed.
const watchEvery = 5 * time.Second

// watch keeps the dead-letter and lag gauges current.
func (s *Service) watch(ctx context.Context) error {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		if st, err := s.deps.JetStream.Stream(ctx, jobs.DLQStream); err == nil {
			if info, err := st.Info(ctx); err == nil {
				s.metrics.DLQ.Set(float64(info.State.Msgs))
			}
		}
		s.watchLag(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Ready reports whether NATS and MongoDB answer.
func (s *Service) Ready(ctx context.Context) error {
	if _, err := s.events.Info(ctx); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := s.store.Ping(ctx); err != nil {
		return fmt.Errorf("mongo: %w", err)
	}
	return nil
}
