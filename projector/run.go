package projector

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

// Run runs the projector alone, with its admin listener, until ctx is done.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("kiln-projector"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return fmt.Errorf("connect to nats: %w", redact.Error(err, cfg.NATSURL))
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	mc, err := mongo.Connect(options.Client().ApplyURI(cfg.MongoURI))
	if err != nil {
		return fmt.Errorf("connect to mongo: %w", redact.Error(err, cfg.MongoURI))
	}
	defer func() { _ = mc.Disconnect(context.WithoutCancel(ctx)) }()
	ropts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", redact.Error(err, cfg.RedisURL))
	}
	rdb := redis.NewClient(ropts)
	defer rdb.Close()

	reg := httpserver.NewRegistry()
	tp, stopTracing, err := telemetry.Start(ctx, cfg.Telemetry.Named("kiln-projector"), log)
	if err != nil {
		return err
	}
	defer stopTracing.Flush(log)
	svc, err := New(ctx, cfg, Deps{JetStream: js, Mongo: mc.Database(cfg.MongoDatabase), Redis: rdb, Metrics: reg, Log: log, Tracer: tp})
	if err != nil {
		return err
	}
	admin := httpserver.NewAdminApp(reg, svc.Ready, log, httpserver.WithPprof(cfg.AdminPprof))
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.Run(ctx) })
	g.Go(func() error { return httpserver.Serve(ctx, admin, cfg.AdminAddr, 5*time.Second, log) })
	return g.Wait()
}
