package notifier

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/telemetry"
	"github.com/kilnhq/kiln/telemetry/redact"
)

// Run runs the notifier alone, with its admin listener, until ctx is done.
// An invalid rules file stops it before it connects anywhere.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if _, err := CheckRules(cfg); err != nil {
		return err
	}
	nc, err := Connect(cfg.NATSURL)
	if err != nil {
		return err
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

	reg := httpserver.NewRegistry()
	tp, stopTracing, err := telemetry.Start(ctx, cfg.Telemetry.Named("kiln-notifier"), log)
	if err != nil {
		return err
	}
	defer stopTracing.Flush(log)
	svc, err := New(ctx, cfg, Deps{JetStream: js, Mongo: mc.Database(cfg.MongoDatabase), Metrics: reg, Log: log, Tracer: tp})
	if err != nil {
		return err
	}
	admin := httpserver.NewAdminApp(reg, svc.Ready, log, httpserver.WithPprof(cfg.AdminPprof))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.Run(gctx) })
	g.Go(func() error { return httpserver.Serve(gctx, admin, cfg.AdminAddr, 5*time.Second, log) })
	err = g.Wait()
	if derr := nc.Drain(); derr != nil && err == nil {
		err = fmt.Errorf("drain nats: %w", derr)
	}
	return err
}

// Connect opens the notifier's NATS connection (reconnecting forever).
func Connect(url string) (*nats.Conn, error) {
	nc, err := nats.Connect(url, nats.Name("kiln-notifier"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", redact.Error(err, url))
	}
	return nc, nil
}
