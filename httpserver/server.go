package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/pprof"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AppConfig configures a public Fiber app.
type AppConfig struct {
	// BodyLimit is the largest request body accepted; larger bodies get 413.
	BodyLimit int
	Log       *slog.Logger
	// BaseContext, when set, is every request's UserContext: cancelling it
	// (at shutdown) aborts in-flight store calls so shutdown is not held up
	// by a slow query.
	BaseContext context.Context
	// ReadTimeout bounds reading one request from its first byte; 0 is
	// the default of 15 s.
	ReadTimeout time.Duration
	// Origins, when set, is the browser origin policy
	// (KILN_ALLOWED_ORIGINS) of a public app: CORS on every route, one
	// middleware ahead of them all. Nil (the admin listener): no CORS.
	Origins *Origins
	// ServerOnly are path prefixes that stay server-to-server (the
	// webhooks admin API): CORS there only for origins listed explicitly.
	ServerOnly []string
}

// readTimeout bounds reading one request, headers and body, from its first
// byte: a client trickling a body (slowloris) is cut off with 408 instead of
// holding its connection and buffers.
const readTimeout = 15 * time.Second

// NewApp returns a Fiber app with Kiln's error handling and timeouts.
func NewApp(cfg AppConfig) *fiber.App {
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = readTimeout
	}
	app := fiber.New(fiber.Config{
		AppName:               "kiln",
		BodyLimit:             cfg.BodyLimit,
		ErrorHandler:          ErrorHandler(cfg.Log),
		DisableStartupMessage: true,
		ReadTimeout:           cfg.ReadTimeout,
		IdleTimeout:           120 * time.Second,
		ReadBufferSize:        16 * 1024,
		// Give the read and write buffers back to their pools between
		// requests instead of keeping them per connection: idle keep-alive
		// connections and GET /stream, which takes its connection over
		// after the request, then hold no 16 KiB read buffer each. It needs
		// fasthttp >= v1.78: older versions returned an unflushed write
		// buffer to the pool while pipelined requests were pending, and
		// every response but the last of a pipelined run was lost
		// (TestPipelinedPostsAllAnsweredInOrder in ingest).
		ReduceMemoryUsage: true,
	})
	serverErrors(app)
	if cfg.Origins != nil {
		app.Use(CORS(*cfg.Origins, cfg.ServerOnly...))
	}
	if cfg.BaseContext != nil {
		app.Use(func(c *fiber.Ctx) error {
			c.SetUserContext(cfg.BaseContext)
			return c.Next()
		})
	}
	return app
}

// RegisterHealth adds GET /healthz (the process is alive) and GET /readyz
// (every dependency answered within two seconds; 503 naming the ones that
// did not, without their addresses).
func RegisterHealth(r fiber.Router, ready ReadyFunc) {
	r.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	r.Get("/readyz", func(c *fiber.Ctx) error { return answerReadyFunc(c, ready) })
}

// NewRegistry returns a Prometheus registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// AdminOption adds an optional part to the admin listener.
type AdminOption func(*fiber.App)

// WithPprof serves net/http/pprof's profiles under /debug/pprof/ when
// enabled is true (ADMIN_PPROF); off, those paths are 404 like any other
// unknown path.
func WithPprof(enabled bool) AdminOption {
	return func(app *fiber.App) {
		if enabled {
			app.Use(pprof.New())
		}
	}
}

// NewAdminApp returns the admin listener's app: /metrics (Prometheus, with
// kiln_ready and kiln_ready_dependency_down from ready), /healthz and
// /readyz, and what opts add.
func NewAdminApp(reg *prometheus.Registry, ready ReadyFunc, log *slog.Logger, opts ...AdminOption) *fiber.App {
	if err := reg.Register(newReadyCollector(ready)); err != nil {
		log.Warn("admin: readiness metrics not registered", "err", err)
	}
	app := NewApp(AppConfig{BodyLimit: 64 * 1024, Log: log})
	for _, opt := range opts {
		opt(app)
	}
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	RegisterHealth(app, ready)
	return app
}

// Serve runs app on addr until ctx is done, then shuts it down, giving
// in-flight requests up to grace to finish.
func Serve(ctx context.Context, app *fiber.App, addr string, grace time.Duration, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ServeListener(ctx, app, ln, grace, log)
}

// ServeListener is Serve on an existing listener (tests pass port 0).
func ServeListener(ctx context.Context, app *fiber.App, ln net.Listener, grace time.Duration, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- app.Listener(ln) }()
	log.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve %s: %w", ln.Addr(), err)
		}
		return nil
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := app.ShutdownWithContext(sctx)
	// fasthttp's Shutdown does nothing to a server whose Serve has not
	// registered ln yet (a context cancelled as the listener starts: a
	// sibling that failed at start), and that Serve then runs forever.
	// Closing ln ends it; after a Shutdown that closed it, this is a no-op.
	_ = ln.Close()
	<-errc
	if err != nil {
		return fmt.Errorf("shut down %s: %w", ln.Addr(), err)
	}
	return nil
}
