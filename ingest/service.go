// Package ingest is the ingest service: POST /events validated against the
// schema registry and appended to the EVENTS stream. Standalone mode mounts
// it with Register; `kiln serve ingest` runs it alone with Run.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/limiter"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest/internal/deadletter"
	"github.com/kilnhq/kiln/ingest/internal/eventbody"
	"github.com/kilnhq/kiln/ingest/internal/httpapi"
	"github.com/kilnhq/kiln/ingest/internal/metrics"
	"github.com/kilnhq/kiln/ingest/internal/publish"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/schemas/idledger"
	"github.com/kilnhq/kiln/schemas/problem"
	"github.com/kilnhq/kiln/schemas/rejections"
	"github.com/kilnhq/kiln/telemetry"
	"github.com/kilnhq/kiln/telemetry/fibertrace"
	"github.com/kilnhq/kiln/webhooks/inbound"
)

// Deps are what the ingest service runs on.
type Deps struct {
	// NATS is the connection to publish on. Connect makes one with the
	// options ingest relies on (no reconnect buffer: a publish while
	// disconnected fails at once instead of landing after a 503).
	NATS *nats.Conn
	// Registry validates events; nil follows the schema registry
	// (KILN_SCHEMAS): every version registered at runtime is in force here
	// as soon as it arrives.
	Registry *schemas.Registry
	// Metrics receives ingest's Prometheus collectors.
	Metrics prometheus.Registerer
	Log     *slog.Logger
	// Tracer records the request and append spans; nil is no tracing.
	Tracer trace.TracerProvider
}

// Service is a ready-to-mount ingest.
type Service struct {
	cfg     Config
	js      jetstream.JetStream
	nc      *nats.Conn
	access  *httpserver.Access
	handler *httpapi.Handler
	// webhooks serves POST /webhooks/:provider through handler's path.
	webhooks *inbound.Handler
	metrics  *metrics.Ingest
	// resolver settles writes left in doubt by an ack timeout; Run runs it.
	resolver *publish.Resolver
	// schemas follows the schema registry; Run runs it (nil with
	// Deps.Registry).
	schemas *catalog.Live
	tracer  trace.TracerProvider
}

// New prepares the stream and the id ledger and returns the service.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	js, err := jetstream.New(deps.NATS,
		jetstream.WithPublishAsyncMaxPending(16384),
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout))
	if err != nil {
		return nil, fmt.Errorf("ingest: jetstream: %w", err)
	}
	stream, err := schemas.SetUpStream(ctx, js, cfg.Stream, deps.Log)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if _, err := schemas.Setup(ctx, deps.Log, rejections.StreamName, func(ctx context.Context) (jetstream.Stream, error) {
		return rejections.Ensure(ctx, js, cfg.Rejections, cfg.Stream.Replicas)
	}); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	ledger, err := schemas.Setup(ctx, deps.Log, idledger.Bucket, func(ctx context.Context) (*publish.Ledger, error) {
		return publish.OpenLedger(ctx, js, publish.LedgerOptions{TTL: cfg.IdempotencyTTL, Replicas: cfg.Stream.Replicas})
	})
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	reg := deps.Registry
	var live *catalog.Live
	if reg == nil {
		if live, err = followSchemas(ctx, js, cfg, deps.Log); err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
	}
	publishable, err := httpserver.ParsePublishable(cfg.PublishableKeys)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	m := metrics.NewIngest(deps.Metrics)
	recorder, err := deadletter.New(deps.NATS, cfg.PublishTimeout, func(o rejections.Outcome) {
		m.RecordFailed.WithLabelValues(string(o)).Inc()
	})
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	resolver := publish.NewResolver(js, ledger, stream.CachedInfo().Config.Duplicates, deps.Log,
		func(outcome string) { m.InDoubt.WithLabelValues(outcome).Inc() })
	retryAfter := max(1, int(cfg.PublishTimeout.Round(time.Second)/time.Second))
	s := &Service{
		cfg:      cfg,
		js:       js,
		nc:       deps.NATS,
		access:   &httpserver.Access{Ingest: httpserver.NewKeys(cfg.APIKeys...), Publishable: publishable},
		metrics:  m,
		resolver: resolver,
		tracer:   deps.Tracer,
		handler: &httpapi.Handler{
			Normalizer: &eventbody.Normalizer{Registry: reg, Now: time.Now, MaxFutureSkew: cfg.MaxFutureSkew,
				Enforcement: cfg.Schemas.DefaultEnforcement(), RejectUnknown: cfg.Schemas.RejectUnknownTypes()},
			Rejections: recorder,
			Publisher:  publish.NewPublisher(js, ledger, resolver, cfg.PublishTimeout),
			Metrics:    m,
			MaxBatch:   cfg.MaxBatch,
			RetryAfter: retryAfter,
			Log:        deps.Log,
		},
	}
	if live != nil {
		s.schemas = live
		s.handler.Normalizer.Schemas = live.Current
		deps.Metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "kiln", Subsystem: "ingest", Name: "schema_registry_stale",
			Help: "1 while ingest cannot follow the schema registry (KILN_SCHEMAS) and validates against the last versions it read.",
		}, func() float64 {
			if live.Stale() != nil {
				return 1
			}
			return 0
		}))
	}
	if telemetry.Enabled(deps.Tracer) {
		s.handler.Tracer = deps.Tracer.Tracer("github.com/kilnhq/kiln/ingest")
	}
	if s.webhooks, err = inbound.NewHandler(cfg.Webhooks, webhookAppender{s.handler}, deps.Log); err != nil {
		return nil, fmt.Errorf("ingest: webhooks: %w", err)
	}
	return s, nil
}

// Run settles in-doubt writes (see publish.Resolver) until ctx ends. Without
// it ingest still works, but a client retry of a write whose ack timed out
// is deduplicated only inside the stream's dedupe window.
func (s *Service) Run(ctx context.Context) error {
	if s.schemas == nil {
		return s.resolver.Run(ctx)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.resolver.Run(ctx) })
	g.Go(func() error { return s.schemas.Run(ctx) })
	return g.Wait()
}

// followSchemas opens the schema registry (seeding it with the embedded
// schemas on first start) and returns its follower, which starts from the
// embedded schemas and is brought up to date by Run.
func followSchemas(ctx context.Context, js jetstream.JetStream, cfg Config, log *slog.Logger) (*catalog.Live, error) {
	cat, err := schemas.Setup(ctx, log, catalog.StreamName, (&catalog.Opener{JetStream: js, Stream: cfg.Stream}).Get)
	if err != nil {
		return nil, err
	}
	return catalog.NewLive(cat, log)
}

// Register mounts POST /events, behind API-key auth (ingest keys, or
// publishable keys for their types and origins) and the rate limit,
// and POST /webhooks/:provider, authenticated by its signatures.
func (s *Service) Register(r fiber.Router) {
	if telemetry.Enabled(s.tracer) {
		// A route of its own ahead of the webhook route: its c.Next runs it.
		r.Post("/webhooks/:provider", fibertrace.Middleware(s.tracer, "/webhooks/:provider"))
	}
	s.webhooks.Register(r)
	var handlers []fiber.Handler
	if telemetry.Enabled(s.tracer) {
		handlers = append(handlers, fibertrace.Middleware(s.tracer, "/events"))
	}
	handlers = append(handlers, s.countRejections, s.access.Require(httpserver.NeedWrite))
	if s.cfg.RateLimit > 0 {
		handlers = append(handlers, limiter.New(limiter.Config{
			Max:               s.cfg.RateLimit,
			Expiration:        time.Second,
			LimiterMiddleware: limiter.SlidingWindow{},
			KeyGenerator:      s.rateLimitKey,
			LimitReached: func(c *fiber.Ctx) error {
				retry, _ := strconv.Atoi(string(c.Response().Header.Peek(fiber.HeaderRetryAfter)))
				p := problem.New(fiber.StatusTooManyRequests, "rate-limited", "Too many requests",
					fmt.Sprintf("more than %d requests per second from this client", s.cfg.RateLimit))
				p.RetryAfter = max(1, retry)
				return p
			},
		}))
	}
	handlers = append(handlers, s.handler.PostEvents)
	r.Post("/events", handlers...)
}

// countRejections counts requests refused before the handler runs.
func (s *Service) countRejections(c *fiber.Ctx) error {
	err := c.Next()
	var p *problem.Details
	if errors.As(err, &p) {
		switch p.Status {
		case fiber.StatusUnauthorized, fiber.StatusForbidden:
			s.metrics.Rejected.WithLabelValues(metrics.ReasonUnauthorized).Inc()
		case fiber.StatusTooManyRequests:
			s.metrics.Rejected.WithLabelValues(metrics.ReasonRateLimited).Inc()
		}
	}
	return err
}

// Ready reports whether NATS is connected and the EVENTS stream answers.
func (s *Service) Ready(ctx context.Context) error {
	if !s.nc.IsConnected() {
		return fmt.Errorf("nats: %s", s.nc.Status())
	}
	if _, err := s.js.Stream(ctx, schemas.StreamName); err != nil {
		return fmt.Errorf("jetstream stream %s: %w", schemas.StreamName, err)
	}
	return nil
}
