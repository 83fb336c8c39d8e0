package standalone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/standalone/embedded"
)

const shutdownGrace = 10 * time.Second

// Logger returns the process logger the configuration asks for.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	level, _ := c.logLevel() // validated
	return c.loggerAt(w, level)
}

func (c *Config) loggerAt(w io.Writer, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// deps are the started dependencies, stopped in reverse order.
type deps struct {
	natsURL, mongoURI, redisURL string
	stops                       []func()
}

func (d *deps) stop() {
	for i := len(d.stops) - 1; i >= 0; i-- {
		d.stops[i]()
	}
}

// startDeps starts embedded NATS, and FerretDB and Redis unless URLs for
// real ones are configured. FerretDB logs every client quirk at INFO and
// WARN, so it gets its own logger, quiet unless LOG_LEVEL=debug.
func startDeps(cfg Config, log, ferretLog *slog.Logger) (*deps, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	d := &deps{mongoURI: cfg.MongoURI, redisURL: cfg.RedisURL}
	ns, err := embedded.StartNATS("127.0.0.1", cfg.NATSPort, cfg.DataDir, log)
	if err != nil {
		return d, err
	}
	d.natsURL, d.stops = ns.URL(), append(d.stops, ns.Shutdown)
	if d.mongoURI == "" {
		fdb, err := embedded.StartFerretDB(net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.MongoPort)), cfg.DataDir, ferretLog)
		if err != nil {
			return d, err
		}
		d.mongoURI, d.stops = fdb.URI(), append(d.stops, fdb.Shutdown)
	}
	if d.redisURL == "" {
		rs, err := embedded.StartRedis(net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.RedisPort)))
		if err != nil {
			return d, err
		}
		d.redisURL, d.stops = rs.URL(), append(d.stops, rs.Shutdown)
	}
	return d, nil
}

// Run starts everything and serves until ctx is done, then shuts down in
// order: HTTP listeners, NATS connection (outstanding acks drained), then
// the embedded servers.
func Run(ctx context.Context, cfg Config, stderr io.Writer) error {
	log := cfg.Logger(stderr)
	ferretLevel := slog.LevelError
	if level, _ := cfg.logLevel(); level <= slog.LevelDebug {
		ferretLevel = level
	}
	d, err := startDeps(cfg, log, cfg.loggerAt(stderr, ferretLevel).With("component", "ferretdb"))
	defer d.stop()
	if err != nil {
		return err
	}
	mongoClient, err := mongo.Connect(options.Client().ApplyURI(d.mongoURI))
	if err != nil {
		return fmt.Errorf("mongo %s: %w", d.mongoURI, err)
	}
	defer func() { _ = mongoClient.Disconnect(context.Background()) }()
	redisOpts, err := redis.ParseURL(d.redisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(redisOpts)
	defer rdb.Close()

	nc, err := ingest.Connect(d.natsURL, "kiln-standalone", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	reg := httpserver.NewRegistry()
	ingestCfg := cfg.Ingest
	ingestSvc, err := ingest.New(ctx, ingestCfg, ingest.Deps{NATS: nc, Metrics: reg, Log: log.With("service", "ingest")})
	if err != nil {
		return err
	}
	ready := func(ctx context.Context) error {
		return errors.Join(
			ingestSvc.Ready(ctx),
			wrap("mongo", mongoClient.Ping(ctx, nil)),
			wrap("redis", rdb.Ping(ctx).Err()),
		)
	}
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: ingestCfg.MaxBodyBytes, Log: log})
	httpserver.RegisterHealth(app, ready)
	ingestSvc.Register(app)
	admin := httpserver.NewAdminApp(reg, ready, log)

	log.Info("kiln standalone starting",
		"http", "http://localhost:"+strconv.Itoa(cfg.Port), "admin", "http://localhost:"+strconv.Itoa(cfg.AdminPort),
		"nats", d.natsURL, "mongo", d.mongoURI, "redis", d.redisURL, "data", cfg.DataDir)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return httpserver.Serve(gctx, app, ":"+strconv.Itoa(cfg.Port), shutdownGrace, log) })
	g.Go(func() error {
		return httpserver.Serve(gctx, admin, ":"+strconv.Itoa(cfg.AdminPort), shutdownGrace, log)
	})
	err = g.Wait()
	if derr := nc.Drain(); derr != nil && err == nil {
		err = fmt.Errorf("drain nats: %w", derr)
	}
	log.Info("kiln standalone stopped")
	return err
}

func wrap(what string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
