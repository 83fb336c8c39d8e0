// Package webhooks is Kiln's outbound webhooks: endpoints managed through
// an admin API, and a dispatcher delivering every matching event to every
// matching endpoint, signed with Standard Webhooks headers, retried on a
// schedule, logged per endpoint. Inbound webhooks (POST
// /webhooks/{provider}) are ingest's, built from the inbound package.
package webhooks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/webhooks/adminapi"
	"github.com/kilnhq/kiln/webhooks/delivery"
	"github.com/kilnhq/kiln/webhooks/endpoint"
)

// Deps are what the webhooks service runs on.
type Deps struct {
	JetStream jetstream.JetStream
	Mongo     *mongo.Database
	Log       *slog.Logger
	// Tracer records a span per outbound delivery attempt; nil is no
	// tracing.
	Tracer trace.TracerProvider
	// Metrics gets the endpoints' health (kiln_webhooks_endpoints,
	// kiln_webhooks_oldest_failure_seconds); nil registers nothing.
	Metrics prometheus.Registerer
}

// Service is the admin API and the dispatcher.
type Service struct {
	db     *mongo.Database
	api    *adminapi.API
	fanout *delivery.Fanout
	worker *delivery.Worker
	pruner *delivery.Pruner
}

// New prepares the WEBHOOKS stream and returns the service.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if deps.JetStream == nil || deps.Mongo == nil {
		return nil, errors.New("webhooks: Deps.JetStream and Deps.Mongo are required")
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	allow, err := delivery.ParsePrefixes(cfg.AllowNetworks)
	if err != nil {
		return nil, fmt.Errorf("webhooks: WEBHOOKS_ALLOW_NETWORKS: %w", err)
	}
	warnIfOpen(cfg, log)
	if _, err := schemas.Setup(ctx, log, delivery.Stream, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, delivery.EnsureStream(ctx, deps.JetStream, cfg.StreamReplicas)
	}); err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	store := endpoint.NewStore(deps.Mongo)
	cache := endpoint.NewCache(store, cfg.EndpointRefresh)
	dlog := delivery.NewLog(deps.Mongo)
	sender := delivery.NewSender(delivery.Guard{Allow: allow}, cfg.AttemptTimeout, cfg.Concurrency)
	if deps.Metrics != nil {
		if err := deps.Metrics.Register(newEndpointsCollector(cache)); err != nil {
			return nil, fmt.Errorf("webhooks: register metrics: %w", err)
		}
	}
	return &Service{
		db: deps.Mongo,
		api: &adminapi.API{
			Keys: httpserver.NewKeys(cfg.AdminKeys...), Store: store, Cache: cache, Log: dlog,
			Redriver: &delivery.Redriver{JetStream: deps.JetStream, Log: dlog},
			Sender:   sender, Overlap: cfg.RotationOverlap,
		},
		pruner: &delivery.Pruner{Log: dlog, Retention: cmp.Or(cfg.LogRetention, defaultLogRetention), Logger: log},
		fanout: &delivery.Fanout{JetStream: deps.JetStream, Endpoints: cache, Deliveries: dlog, Log: log},
		worker: &delivery.Worker{
			JetStream: deps.JetStream, Endpoints: cache, Store: store, Log: dlog, Sender: sender, Logger: log,
			Tracer: deps.Tracer,
			Config: delivery.Config{
				Schedule: cfg.Schedule, DisableAfter: cfg.DisableAfter,
				Concurrency: cfg.Concurrency, PerEndpoint: cfg.PerEndpoint,
				AckWait: cfg.AttemptTimeout + ackMargin, MaxRetryAfter: cfg.MaxRetryAfter,
			},
		},
	}, nil
}

// Register mounts the admin API.
func (s *Service) Register(r fiber.Router) { s.api.Register(r) }

// Run dispatches until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.fanout.Run(ctx) })
	g.Go(func() error { return s.worker.Run(ctx) })
	g.Go(func() error { return s.pruner.Run(ctx) })
	return g.Wait()
}

// Ready reports whether MongoDB answers.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return fmt.Errorf("webhooks: mongo: %w", err)
	}
	return nil
}
