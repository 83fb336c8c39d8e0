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

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/app/roles"
	"github.com/kilnhq/kiln/app/runner"
	"github.com/kilnhq/kiln/app/standalone/embedded"
	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/telemetry/redact"
)

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
	// embeddedMongo: mongoURI is the embedded FerretDB (see connectServices).
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

// Run starts the embedded servers and every configured service, serves
// until ctx is done, then shuts down in order: HTTP listeners and
// consumers, NATS connections (outstanding acks drained), then the
// embedded servers.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	d, err := startDeps(cfg, log, ferretLogger(log))
	defer d.stop()
	if err != nil {
		return err
	}
	removeDiscovery, err := writeDiscovery(cfg, d)
	if err != nil {
		return err
	}
	defer removeDiscovery()
	log.Info("kiln standalone starting", "services", cfg.Services,
		"http", "http://localhost:"+strconv.Itoa(cfg.Port), "admin", "http://"+net.JoinHostPort(cfg.AdminHost, strconv.Itoa(cfg.AdminPort)),
		"nats", redact.URL(d.natsURL), "mongo", redact.URL(d.mongoURI), "store", d.storeKind, "redis", redact.URL(d.redisURL), "redisKind", d.redisKind, "data", cfg.DataDir)
	err = runner.Run(ctx, runner.Process{
		Name:    "kiln",
		Tracing: cfg.Telemetry,
		Listeners: runner.Listeners{
			HTTPAddr: ":" + strconv.Itoa(cfg.Port), AdminAddr: net.JoinHostPort(cfg.AdminHost, strconv.Itoa(cfg.AdminPort)),
			Pprof: cfg.AdminPprof, BodyLimit: cfg.Ingest.MaxBodyBytes, Origins: cfg.AllowedOrigins,
		},
		Build: func(ctx context.Context, rd runner.Deps) ([]runner.Part, error) {
			deps, err := connectServices(d, cfg.Projector.MongoDatabase, rd)
			if err != nil {
				return nil, err
			}
			return buildComponents(ctx, cfg, deps)
		},
	}, log)
	log.Info("kiln standalone stopped")
	return err
}

// connectServices opens the connections the services share: one MongoDB
// client, one Redis client, and two NATS connections, one for appends
// (no reconnect buffer, see connect.Append) and one for the consumers.
func connectServices(d *deps, database string, rd runner.Deps) (roles.Deps, error) {
	var pool uint64
	if d.embeddedMongo {
		// FerretDB v1 serves every command from a pool of 100 SQLite
		// connections, and some commands hold several: bound the
		// commands all services send at once well below that.
		pool = embeddedMongoPool
	}
	out := roles.Deps{Metrics: rd.Metrics, Tracer: rd.Tracer, Log: rd.Log}
	mc, err := rd.Conns.Mongo(d.mongoURI, "kiln", pool)
	if err != nil {
		return out, err
	}
	if out.Redis, err = rd.Conns.Redis(d.redisURL); err != nil {
		return out, err
	}
	if out.Append, err = rd.Conns.NATS(d.natsURL, "kiln-standalone-ingest", connect.Append); err != nil {
		return out, err
	}
	nc, err := rd.Conns.NATS(d.natsURL, "kiln-standalone-consumers", connect.Consume)
	if err != nil {
		return out, err
	}
	if out.JetStream, err = jetstream.New(nc); err != nil {
		return out, fmt.Errorf("jetstream: %w", err)
	}
	out.Mongo = mc.Database(database)
	return out, nil
}

func wrap(what string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
