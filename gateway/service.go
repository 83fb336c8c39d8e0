// Package gateway is Kiln's read API: the event history (GET /events from
// the recent-events cache in Redis when it holds the page, else MongoDB;
// GET /events/{id} from MongoDB), the metric counters (GET /metrics) from
// Redis, the live stream (GET /stream) from JetStream, the API's OpenAPI
// document and interactive docs, and the web dashboard (GET /). Standalone
// mode mounts it with Register beside ingest and runs (*Service).Run;
// `kiln serve gateway` runs it alone with Run.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/dashboard"
	"github.com/kilnhq/kiln/gateway/internal/httpapi"
	"github.com/kilnhq/kiln/gateway/internal/metrics"
	"github.com/kilnhq/kiln/gateway/internal/schemaapi"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/schemas/problem"
)

// Deps are what the gateway reads from.
type Deps struct {
	// Mongo is the database holding the event history.
	Mongo *mongo.Database
	// Redis holds the metric counters.
	Redis redis.UniversalClient
	// JetStream feeds GET /stream; nil leaves the live stream off (it
	// answers 503).
	JetStream jetstream.JetStream
	// Metrics receives the gateway's Prometheus collectors; nil keeps them
	// unexported.
	Metrics prometheus.Registerer
	Log     *slog.Logger
	// Tracer records the live fan-out's spans; nil is no tracing.
	Tracer trace.TracerProvider
}

// metricsMaxAge is how long a GET /metrics snapshot is shared.
const metricsMaxAge = 250 * time.Millisecond

// Service is a ready-to-mount gateway.
type Service struct {
	mongo   *mongo.Database
	redis   redis.UniversalClient
	access  *httpserver.Access
	api     *httpapi.Handler
	docs    *httpapi.Docs
	dash    *dashboard.Assets
	metrics *metrics.HTTP
	js      jetstream.JetStream
	stream  *httpapi.Stream // its Hub is nil without JetStream
	// schemas is the schema registry's API; nil without JetStream.
	schemas *schemaapi.API
	// admin guards the admin routes (KILN_ADMIN_KEYS): GET /rejections.
	admin fiber.Handler
}

// New returns the gateway reading from deps.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Mongo == nil || deps.Redis == nil {
		return nil, errors.New("gateway: Deps.Mongo and Deps.Redis are required")
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := deps.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := metrics.NewHTTP(reg)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	docs, err := httpapi.NewDocs()
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	dash, err := dashboard.New()
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	access, err := httpserver.NewAccess(nil, cfg.ReadKeys, "", cfg.Tokens)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	counters := readmodel.FollowCounters(deps.Redis, readmodel.CountersOptions{})
	api := &httpapi.Handler{
		History:   readmodel.FollowHistory(deps.Mongo),
		Counters:  counters,
		Recent:    readmodel.FollowRecent(deps.Redis, readmodel.RecentOptions{}),
		Snapshots: &httpapi.Snapshots{Counters: counters, Now: time.Now, MaxAge: metricsMaxAge},
		Now:       time.Now,
		Log:       log,
	}
	hub, err := newHub(cfg.SSE, deps.JetStream, counters, api.Newest, reg, deps.Tracer, log)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	var schemaAPI *schemaapi.API
	if deps.JetStream != nil {
		schemaAPI = &schemaapi.API{
			Catalog:            &catalog.Opener{JetStream: deps.JetStream, Stream: cfg.Stream},
			DefaultMode:        cfg.Schemas.Mode(),
			DefaultEnforcement: cfg.Schemas.DefaultEnforcement(),
			Stored:             schemaapi.StoredFrom(api.Snapshots.Get, api.Recent, api.History),
			Sample:             cfg.Schemas.CheckSample,
			Activity:           schemaapi.ActivityFrom(api.Snapshots.Get, api.Recent),
			Read:               access.Require(httpserver.NeedReadAll),
			Admin:              adminGuard(cfg, access),
			Log:                log,
		}
	}
	docs.Log = log
	if deps.JetStream != nil {
		docs.Typed = &httpapi.Typed{Catalog: schemaAPI.Catalog, AcceptUntyped: !cfg.Schemas.RejectUnknownTypes()}
	}
	return &Service{
		schemas: schemaAPI,
		mongo:   deps.Mongo,
		redis:   deps.Redis,
		access:  access,
		metrics: m,
		docs:    docs,
		dash:    dash,
		js:      deps.JetStream,
		stream:  &httpapi.Stream{Hub: hub},
		api:     api,
		admin:   adminGuard(cfg, access),
	}, nil
}

// Register mounts the read API and the live stream (behind the read keys
// or, for GET /events, /events/{id} and /stream, subscriber tokens that
// narrow what they return; either may come as ?access_token=), GET
// /openapi.json, GET /docs and
// the dashboard, GET / and GET /dashboard/{file} (public; the page sends
// the read key it is given). It adds no middleware to r and no /healthz or
// /readyz: the caller owns those, and ingest's POST /events may share r.
func (s *Service) Register(r fiber.Router) {
	observe := s.metrics.Observe
	read, auth := s.access.Require(httpserver.NeedRead), s.access.Require(httpserver.NeedReadAll)
	r.Get("/events", observe, read, s.api.ListEvents)
	r.Get("/events/:id", observe, read, s.api.GetEvent)
	r.Get("/metrics", observe, auth, s.api.Metrics)
	r.Get("/alerts", observe, auth, (&httpapi.Alerts{Store: readmodel.NewAlerts(s.mongo), Log: s.api.Log}).List)
	r.Get("/orders", observe, auth, (&httpapi.Orders{Store: readmodel.NewOrders(s.mongo), Log: s.api.Log}).List)
	r.Get("/stream", observe, read, s.stream.Handle)
	if s.schemas != nil {
		s.schemas.Register(r, observe)
	}
	if s.js != nil {
		// The bodies are as sent and may hold personal data: admin keys.
		rej := &httpapi.Rejections{JetStream: s.js, Log: s.api.Log}
		r.Get("/rejections", observe, s.admin, rej.List)
		r.Get("/rejections/summary", observe, s.admin, rej.Summary)
	}
	r.Get("/openapi.json", observe, s.docs.OpenAPI)
	r.Get("/docs", observe, s.docs.Page)
	r.Get("/docs/:file", observe, s.docs.Asset)
	s.dash.Register(r, observe)
}

// Ready reports whether MongoDB, Redis and (with JetStream) the EVENTS
// stream answer.
func (s *Service) Ready(ctx context.Context) error {
	var errs []error
	if s.js != nil {
		if _, err := s.js.Stream(ctx, schemas.StreamName); err != nil {
			errs = append(errs, fmt.Errorf("nats: %w", err))
		}
	}
	if err := s.mongo.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		errs = append(errs, fmt.Errorf("mongo: %w", err))
	}
	if err := s.redis.Ping(ctx).Err(); err != nil {
		errs = append(errs, fmt.Errorf("redis: %w", err))
	}
	return errors.Join(errs...)
}

// adminGuard guards the schema registry's writes: the admin keys; with
// none, open only while no other key is set either (make run on a
// laptop), else refused (a deployment that guards reads must not leave
// its schemas open to anyone).
func adminGuard(cfg Config, access *httpserver.Access) fiber.Handler {
	keys := httpserver.NewKeys(cfg.AdminKeys...)
	if keys.Enabled() {
		return httpserver.RequireKey(keys, false)
	}
	if access.ReadAuth() {
		return func(*fiber.Ctx) error {
			return problem.New(http.StatusForbidden, "admin-keys-required", "Forbidden",
				"schema changes need an admin key: set KILN_ADMIN_KEYS (read keys or tokens are set, so writes are not left open)")
		}
	}
	return func(c *fiber.Ctx) error { return c.Next() }
}
