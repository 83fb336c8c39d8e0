package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/telemetry"
	"github.com/kilnhq/kiln/telemetry/redact"
)

// shutdownGrace bounds how long in-flight requests may finish on shutdown.
const shutdownGrace = 10 * time.Second

// bodyLimit is the largest request body the gateway reads: it serves GETs only.
const bodyLimit = 64 * 1024

// Run runs the gateway alone: it connects to MongoDB, Redis and NATS, serves
// the public and admin listeners and the live stream until ctx is done,
// then shuts them down gracefully and disconnects. Unreachable stores do
// not stop it from starting: /readyz reports them until they answer.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	mc, err := mongo.Connect(options.Client().ApplyURI(cfg.MongoURI).SetAppName("kiln-gateway"))
	if err != nil {
		return fmt.Errorf("connect to mongo: %w", redact.Error(err, cfg.MongoURI))
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := mc.Disconnect(dctx); err != nil {
			log.Warn("disconnect from mongo", "err", err)
		}
	}()
	redisOpts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", redact.Error(err, cfg.RedisURL))
	}
	rdb := redis.NewClient(redisOpts)
	defer func() { _ = rdb.Close() }()

	nc, err := nats.Connect(cfg.NATSURL, nats.Name("kiln-gateway"),
		nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return fmt.Errorf("connect to nats: %w", redact.Error(err, cfg.NATSURL))
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	reg := httpserver.NewRegistry()
	tp, stopTracing, err := telemetry.Start(ctx, cfg.Telemetry.Named("kiln-gateway"), log)
	if err != nil {
		return err
	}
	defer stopTracing.Flush(log)
	svc, err := New(cfg, Deps{Mongo: mc.Database(cfg.MongoDatabase), Redis: rdb, JetStream: js, Metrics: reg, Log: log, Tracer: tp})
	if err != nil {
		return err
	}
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: bodyLimit, Log: log, Origins: &cfg.AllowedOrigins})
	httpserver.RegisterHealth(app, svc.Ready)
	svc.Register(app)
	admin := httpserver.NewAdminApp(reg, svc.Ready, log, httpserver.WithPprof(cfg.AdminPprof))

	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if err := svc.Ready(pctx); err != nil {
		log.Warn("stores not ready yet; /readyz will say when they are", "err", err)
	}
	cancel()

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.Run(ctx) })
	g.Go(func() error { return httpserver.Serve(ctx, app, cfg.HTTPAddr, shutdownGrace, log) })
	g.Go(func() error { return httpserver.Serve(ctx, admin, cfg.AdminAddr, shutdownGrace, log) })
	return g.Wait()
}
