// Package runner runs a Kiln process — the standalone (`kiln run`) or one
// role (`kiln serve <role>`) — the one way: it opens the process's
// connections, starts tracing, builds its parts, serves them on a public
// and an admin listener, and shuts down in order when the context ends:
// listeners and parts first, then the NATS connections drained (acks and
// appends still owed are sent), then every connection closed.
package runner

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/telemetry"
)

// shutdownGrace bounds how long requests in flight may finish on shutdown.
const shutdownGrace = 10 * time.Second

// Part is one service of a Kiln process: the standalone runs several,
// `kiln serve <role>` one or two.
type Part struct {
	// Name is the role in readiness answers (/readyz/<name>); parts
	// without one are named by position.
	Name     string
	Ready    func(context.Context) error
	Register func(fiber.Router)          // nil: no public routes
	Run      func(context.Context) error // nil: nothing to run
	// ServerOnly are the path prefixes of its public routes that stay
	// server-to-server: no CORS unless an origin is listed explicitly.
	ServerOnly []string
}

// Listeners are where a Kiln process serves its parts.
type Listeners struct {
	// HTTPAddr is the public listener: every part's routes; "" for a
	// process without public routes (the projector, the notifier).
	HTTPAddr string
	// AdminAddr is the admin listener: /metrics, /healthz, /readyz and
	// /readyz/<part>, and /debug/pprof/ when Pprof.
	AdminAddr string
	Pprof     bool
	// BodyLimit is the largest request body on the public listener.
	BodyLimit int
	// Origins is the browser origin policy (KILN_ALLOWED_ORIGINS): CORS
	// on the public listener, but for the parts' server-only routes.
	Origins httpserver.Origins
}

// Process is what one Kiln process runs.
type Process struct {
	// Name names the process to the stores (connection names) and in
	// traces: "kiln" for the standalone, "kiln-<role>" for a role.
	Name      string
	Listeners Listeners
	// Tracing is the OpenTelemetry configuration; its service name
	// becomes Name.
	Tracing telemetry.Config
	// Build opens the connections the parts need through deps.Conns and
	// creates the parts.
	Build func(ctx context.Context, deps Deps) ([]Part, error)
}

// Deps are what Run hands a process's Build.
type Deps struct {
	// Conns opens the process's connections; Run drains and closes them.
	Conns   *connect.Set
	Metrics *prometheus.Registry
	Tracer  trace.TracerProvider
	Log     *slog.Logger
}

// Run runs p until ctx is done or one of its parts fails, then shuts it
// down in order (see the package documentation).
func Run(ctx context.Context, p Process, log *slog.Logger) error {
	conns := &connect.Set{Log: log}
	defer conns.Close()
	tp, stopTracing, err := telemetry.Start(ctx, p.Tracing.Named(p.Name), log)
	if err != nil {
		return err
	}
	defer stopTracing.Flush(log)
	reg := httpserver.NewRegistry()
	parts, err := p.Build(ctx, Deps{Conns: conns, Metrics: reg, Tracer: tp, Log: log})
	if err != nil {
		return err
	}
	err = Serve(ctx, p.Listeners, parts, reg, log)
	return errors.Join(err, conns.Drain())
}

// Serve serves the parts' routes and readiness on the listeners and runs
// the parts until ctx is done or one fails, then shuts the listeners down
// gracefully. Readiness is per part: /readyz is ready when every part is
// and names the parts and dependencies that are not; /readyz/<part>
// (e.g. /readyz/ingest) answers for one, so ingest stays ready for writes
// while Redis, which only the projector and gateway need, is down.
func Serve(ctx context.Context, l Listeners, parts []Part, reg *prometheus.Registry, log *slog.Logger) error {
	roles := readinessRoles(parts)
	ready := httpserver.RolesReady(roles)
	admin := httpserver.NewAdminApp(reg, ready, log, httpserver.WithPprof(l.Pprof))
	httpserver.RegisterRoleReadiness(admin, roles)

	g, gctx := errgroup.WithContext(ctx)
	if l.HTTPAddr != "" {
		var serverOnly []string
		for _, p := range parts {
			serverOnly = append(serverOnly, p.ServerOnly...)
		}
		app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: l.BodyLimit, Log: log, BaseContext: ctx,
			Origins: &l.Origins, ServerOnly: serverOnly})
		httpserver.RegisterHealth(app, ready)
		httpserver.RegisterRoleReadiness(app, roles)
		for _, p := range parts {
			if p.Register != nil {
				p.Register(app)
			}
		}
		g.Go(func() error { return httpserver.Serve(gctx, app, l.HTTPAddr, shutdownGrace, log) })
	}
	g.Go(func() error { return httpserver.Serve(gctx, admin, l.AdminAddr, shutdownGrace, log) })
	for _, p := range parts {
		if p.Run != nil {
			g.Go(func() error { return p.Run(gctx) })
		}
	}
	return g.Wait()
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
