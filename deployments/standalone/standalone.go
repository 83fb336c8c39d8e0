package standalone

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/standalone/embedded"
	"github.com/kilnhq/kiln/telemetry"
	"github.com/kilnhq/kiln/telemetry/redact"
)

const shutdownGrace = 10 * time.Second

// ferretLogger is FerretDB's logger: it logs every client quirk at INFO
// and WARN, so it only says errors unless log is at debug.
func ferretLogger(log *slog.Logger) *slog.Logger {
	log = log.With("component", "ferretdb")
	if log.Enabled(context.Background(), slog.LevelDebug) {
		return log
	}
	return slog.New(minLevel{Handler: log.Handler(), min: slog.LevelError})
}

// minLevel drops records below min. Attributes and groups are applied to
// the inner handler only for a record it writes: FerretDB calls With on
// every SQL statement with the statement's arguments (a batch of
// documents), and a text handler formats them at once (5 % of the
// standalone's CPU while webhooks were dispatched), to log nothing.
type minLevel struct {
	slog.Handler
	min  slog.Level
	with []func(slog.Handler) slog.Handler
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) Handle(ctx context.Context, r slog.Record) error {
	inner := h.Handler
	for _, f := range h.with {
		inner = f(inner)
	}
	return inner.Handle(ctx, r)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.then(func(in slog.Handler) slog.Handler { return in.WithAttrs(attrs) })
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return h.then(func(in slog.Handler) slog.Handler { return in.WithGroup(name) })
}

func (h minLevel) then(f func(slog.Handler) slog.Handler) minLevel {
	h.with = append(slices.Clip(h.with), f)
	return h
}

// deps are the started dependencies, stopped in reverse order.
type deps struct {
	natsURL, mongoURI, redisURL string
	// redisKind says which Redis: "redis-server <version>" (a child),
	// "miniredis" (in-process) or "REDIS_URL".
	redisKind string
	// storeKind says which MongoDB: "FerretDB <version> (embedded, SQLite)"
	// or "MONGO_URI".
	storeKind string
	// embeddedMongo: mongoURI is the embedded FerretDB (see connect).
	embeddedMongo bool
	stops         []func()
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
		d.embeddedMongo, d.storeKind = true, fdb.Kind()
	} else {
		d.storeKind = "MONGO_URI"
	}
	if d.redisURL == "" {
		url, kind, stop, err := startRedis(cfg, log)
		if err != nil {
			return d, err
		}
		d.redisURL, d.redisKind, d.stops = url, kind, append(d.stops, stop)
	} else {
		d.redisKind = "REDIS_URL"
		log.Info("redis: using REDIS_URL", "redis", redact.URL(d.redisURL))
	}
	return d, nil
}

// startRedis starts a redis-server found on PATH, with its directory under
// the data folder, or else, as a last resort said loudly, the in-process
// miniredis. It returns the server's URL and what it is (for the log, the
// discovery file and benchmarks).
func startRedis(cfg Config, log *slog.Logger) (url, kind string, stop func(), err error) {
	bin, lerr := exec.LookPath("redis-server")
	if lerr == nil {
		rs, err := embedded.StartRedisServer(context.Background(), bin, cfg.RedisPort, cfg.DataDir)
		if err == nil {
			kind = "redis-server " + rs.Version()
			log.Info("redis: started a redis-server child", "redis", kind, "url", rs.URL(), "pid", rs.PID(), "bin", bin)
			return rs.URL(), kind, rs.Shutdown, nil
		}
		log.Error("redis: redis-server did not start", "bin", bin, "err", err)
	}
	rs, err := embedded.StartRedis(net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.RedisPort)))
	if err != nil {
		return "", "", nil, err
	}
	why := "no redis-server on PATH (make run installs it)"
	if lerr == nil {
		why = "redis-server did not start (see the error above)"
	}
	log.Warn("redis: in-process miniredis, a test fake: its sorted sets re-sort on every range query, "+
		"so GET /events at 100,000 events serves ~26 req/s instead of ~6,000 on redis-server; "+
		"install redis-server or set REDIS_URL", "reason", why, "url", rs.URL())
	return rs.URL(), "miniredis", rs.Shutdown, nil
}

// embeddedMongoPool bounds the connections (so the commands in flight)
// of the services to the embedded FerretDB.
const embeddedMongoPool = 32

// clients are the connections the services share.
type clients struct {
	mongo *mongo.Client
	redis *redis.Client
	// ingestNATS has no reconnect buffer (see ingest.Connect); the consumers
	// use their own connection.
	ingestNATS, consumerNATS *nats.Conn
}

func connect(d *deps, log *slog.Logger) (*clients, error) {
	c := &clients{}
	var err error
	mopts := options.Client().ApplyURI(d.mongoURI)
	if d.embeddedMongo {
		// FerretDB v1 serves every command from a pool of 100 SQLite
		// connections, and some commands hold several: bound the
		// commands all services send at once well below that.
		mopts.SetMaxPoolSize(embeddedMongoPool)
	}
	if c.mongo, err = mongo.Connect(mopts); err != nil {
		return c, fmt.Errorf("mongo %s: %w", redact.URL(d.mongoURI), redact.Error(err, d.mongoURI))
	}
	redisOpts, err := redis.ParseURL(d.redisURL)
	if err != nil {
		return c, fmt.Errorf("REDIS_URL: %w", redact.Error(err, d.redisURL))
	}
	c.redis = redis.NewClient(redisOpts)
	if c.ingestNATS, err = ingest.Connect(d.natsURL, "kiln-standalone-ingest", log); err != nil {
		return c, err
	}
	c.consumerNATS, err = nats.Connect(d.natsURL, nats.Name("kiln-standalone-consumers"), nats.MaxReconnects(-1))
	if err != nil {
		return c, fmt.Errorf("connect to nats: %w", redact.Error(err, d.natsURL))
	}
	return c, nil
}

func (c *clients) close() {
	if c.consumerNATS != nil {
		c.consumerNATS.Close()
	}
	if c.ingestNATS != nil {
		c.ingestNATS.Close()
	}
	if c.redis != nil {
		_ = c.redis.Close()
	}
	if c.mongo != nil {
		_ = c.mongo.Disconnect(context.Background())
	}
}

// Run starts everything and serves until ctx is done, then shuts down in
// order: HTTP listeners and consumers, NATS connections (outstanding acks
// drained), then the embedded servers.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	d, err := startDeps(cfg, log, ferretLogger(log))
	defer d.stop()
	if err != nil {
		return err
	}
	c, err := connect(d, log)
	defer c.close()
	if err != nil {
		return err
	}
	removeDiscovery, err := writeDiscovery(cfg, d)
	if err != nil {
		return err
	}
	defer removeDiscovery()

	reg := httpserver.NewRegistry()
	js, err := jetstream.New(c.consumerNATS)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	tp, stopTracing, err := telemetry.Start(ctx, cfg.Telemetry.Named("kiln"), log)
	if err != nil {
		return err
	}
	defer stopTracing.Flush(log)
	parts, err := buildComponents(ctx, cfg, c, js, reg, tp, log)
	if err != nil {
		return err
	}
	log.Info("kiln standalone starting", "services", cfg.Services,
		"http", "http://localhost:"+strconv.Itoa(cfg.Port), "admin", "http://"+net.JoinHostPort(cfg.AdminHost, strconv.Itoa(cfg.AdminPort)),
		"nats", redact.URL(d.natsURL), "mongo", redact.URL(d.mongoURI), "store", d.storeKind, "redis", redact.URL(d.redisURL), "redisKind", d.redisKind, "data", cfg.DataDir)
	err = ServeParts(ctx, Listeners{
		HTTPAddr: ":" + strconv.Itoa(cfg.Port), AdminAddr: net.JoinHostPort(cfg.AdminHost, strconv.Itoa(cfg.AdminPort)),
		Pprof: cfg.AdminPprof, BodyLimit: cfg.Ingest.MaxBodyBytes, Origins: cfg.AllowedOrigins,
	}, parts, reg, log)
	for _, nc := range []*nats.Conn{c.ingestNATS, c.consumerNATS} {
		if derr := nc.Drain(); derr != nil && err == nil {
			err = fmt.Errorf("drain nats: %w", derr)
		}
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

// readinessRoles names the parts' readiness checks by role.
func readinessRoles(parts []Part) []httpserver.Role {
	roles := make([]httpserver.Role, len(parts))
	for i, p := range parts {
		name := p.Name
		if name == "" {
			name = "service-" + strconv.Itoa(i)
		}
		ready := p.Ready
		if ready == nil {
			ready = func(context.Context) error { return nil }
		}
		roles[i] = httpserver.Role{Name: name, Ready: ready}
	}
	return roles
}
