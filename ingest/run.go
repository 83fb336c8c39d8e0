package ingest

import (
	"context"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/telemetry"
)

// shutdownGrace bounds how long in-flight requests may finish on shutdown.
const shutdownGrace = 10 * time.Second

// Run runs ingest alone: the public listener and the admin listener, until
// ctx is done.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	nc, err := Connect(cfg.NATSURL, "kiln-ingest", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	reg := httpserver.NewRegistry()
	tp, stopTracing, err := telemetry.Start(ctx, cfg.Telemetry.Named("kiln-ingest"), log)
	if err != nil {
		return err
	}
	defer stopTracing.Flush(log)
	svc, err := New(ctx, cfg, Deps{NATS: nc, Metrics: reg, Log: log, Tracer: tp})
	if err != nil {
		return err
	}
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: cfg.MaxBodyBytes, Log: log, Origins: &cfg.AllowedOrigins})
	httpserver.RegisterHealth(app, svc.Ready)
	svc.Register(app)
	admin := httpserver.NewAdminApp(reg, svc.Ready, log, httpserver.WithPprof(cfg.AdminPprof))

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return httpserver.Serve(ctx, app, cfg.HTTPAddr, shutdownGrace, log) })
	g.Go(func() error { return httpserver.Serve(ctx, admin, cfg.AdminAddr, shutdownGrace, log) })
	g.Go(func() error { return svc.Run(ctx) })
	err = g.Wait()
	// Wait for outstanding acks before closing; Close drops them.
	if derr := nc.Drain(); derr != nil && err == nil {
		err = derr
	}
	return err
}
