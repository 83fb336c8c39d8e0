// Package serve runs one Kiln role per process (`kiln serve <role>`): the
// services' own runners for ingest, projector, notifier and gateway, and
// runners for the roles that exist only inside the standalone otherwise,
// the outbound webhooks dispatcher and the realtime servers (gRPC and
// Socket.IO).
package serve

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/notifier"
	"github.com/kilnhq/kiln/projector"
	"github.com/kilnhq/kiln/standalone"
)

// shutdownGrace bounds how long in-flight requests may finish on shutdown.
const shutdownGrace = 10 * time.Second

// Role is one role `kiln serve` runs.
type Role struct {
	Name string
	// Short says what it does, for `kiln serve <role> --help`.
	Short string
	// Listens names its listeners and their default addresses.
	Listens string
	run     func(ctx context.Context, env map[string]string, log *slog.Logger) error
}

// Run runs the role configured from env until ctx is done.
func (r Role) Run(ctx context.Context, env map[string]string, log *slog.Logger) error {
	return r.run(ctx, env, log)
}

// Roles are the roles, in pipeline order.
func Roles() []Role {
	return []Role{
		{Name: "ingest", Short: "Accept events (POST /events, inbound POST /webhooks/{provider}) into the EVENTS stream",
			Listens: "INGEST_ADDR :8080, admin INGEST_ADMIN_ADDR 127.0.0.1:9101",
			run: func(ctx context.Context, env map[string]string, log *slog.Logger) error {
				return runLoaded(ctx, env, log, ingest.LoadConfig, ingest.Run)
			}},
		{Name: "projector", Short: "Build the read models (MongoDB history, Redis counters and recent cache) from the stream",
			Listens: "admin PROJECTOR_ADMIN_ADDR 127.0.0.1:9103",
			run: func(ctx context.Context, env map[string]string, log *slog.Logger) error {
				return runLoaded(ctx, env, log, projector.LoadConfig, projector.Run)
			}},
		{Name: "notifier", Short: "Evaluate the alert rules over the stream and deliver alerts (Slack, email, log)",
			Listens: "admin NOTIFIER_ADMIN_ADDR 127.0.0.1:9104",
			run: func(ctx context.Context, env map[string]string, log *slog.Logger) error {
				return runLoaded(ctx, env, log, notifier.LoadConfig, notifier.Run)
			}},
		{Name: "gateway", Short: "Serve the read API, the live stream (GET /stream), the dashboard and the API docs",
			Listens: "GATEWAY_ADDR :8081, admin GATEWAY_ADMIN_ADDR 127.0.0.1:9102",
			run: func(ctx context.Context, env map[string]string, log *slog.Logger) error {
				return runLoaded(ctx, env, log, gateway.LoadConfig, gateway.Run)
			}},
		{Name: "webhooks", Short: "Dispatch outbound webhooks and serve their admin API (/webhooks/endpoints...)",
			Listens: "WEBHOOKS_ADDR :8082, admin WEBHOOKS_ADMIN_ADDR 127.0.0.1:9105",
			run: func(ctx context.Context, env map[string]string, log *slog.Logger) error {
				return runLoaded(ctx, env, log, LoadWebhooksConfig, RunWebhooks)
			}},
		{Name: "realtime", Short: "Serve gRPC (orders.OrderService, kiln.v1.EventService) and Socket.IO (/chat, /notifications)",
			Listens: "gRPC GRPC_ADDR :9090, Socket.IO REALTIME_ADDR :8083, admin REALTIME_ADMIN_ADDR 127.0.0.1:9106",
			run: func(ctx context.Context, env map[string]string, log *slog.Logger) error {
				return runLoaded(ctx, env, log, LoadRealtimeConfig, RunRealtime)
			}},
	}
}

// RoleNames are the roles' names.
func RoleNames() []string {
	var names []string
	for _, r := range Roles() {
		names = append(names, r.Name)
	}
	return names
}

func runLoaded[C any](ctx context.Context, env map[string]string, log *slog.Logger,
	load func(map[string]string) (C, error), run func(context.Context, C, *slog.Logger) error) error {
	cfg, err := load(env)
	if err != nil {
		return err
	}
	return run(ctx, cfg, log)
}

// loadConfig reads a role's configuration from environ and validates it.
func loadConfig[C any, P interface {
	*C
	Validate() error
}](environ map[string]string, role string) (C, error) {
	c, err := env.ParseAsWithOptions[C](env.Options{Environment: environ})
	if err != nil {
		return c, fmt.Errorf("%s config: %w", role, err)
	}
	if err := P(&c).Validate(); err != nil {
		return c, fmt.Errorf("%s config: %w", role, err)
	}
	return c, nil
}

// Listeners are a role's public and admin listeners.
type Listeners struct {
	HTTPAddr, AdminAddr string
	Pprof               bool
}

func (l Listeners) validate(prefix string) error {
	if l.HTTPAddr == "" {
		return fmt.Errorf("%s_ADDR must not be empty", prefix)
	}
	if l.AdminAddr == "" {
		return fmt.Errorf("%s_ADMIN_ADDR must not be empty", prefix)
	}
	return nil
}

// serveParts serves the parts' routes on the public listener, metrics and
// readiness (every part's, by name at /readyz/<name>) on the admin one,
// and runs the parts, until ctx is done or one fails.
func serveParts(ctx context.Context, l Listeners, parts []standalone.Part, reg *prometheus.Registry, log *slog.Logger) error {
	roles := make([]httpserver.Role, 0, len(parts))
	for _, p := range parts {
		roles = append(roles, httpserver.Role{Name: p.Name, Ready: p.Ready})
	}
	ready := httpserver.RolesReady(roles)
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: 1 << 20, Log: log, BaseContext: ctx})
	httpserver.RegisterHealth(app, ready)
	for _, p := range parts {
		if p.Register != nil {
			p.Register(app)
		}
	}
	admin := httpserver.NewAdminApp(reg, ready, log, httpserver.WithPprof(l.Pprof))
	httpserver.RegisterRoleReadiness(admin, roles)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return httpserver.Serve(gctx, app, l.HTTPAddr, shutdownGrace, log) })
	g.Go(func() error { return httpserver.Serve(gctx, admin, l.AdminAddr, shutdownGrace, log) })
	for _, p := range parts {
		if p.Run != nil {
			g.Go(func() error { return p.Run(gctx) })
		}
	}
	return g.Wait()
}

// unknownRole is the error for a role that does not exist.
func unknownRole(name string) error {
	return fmt.Errorf("unknown role %q (roles: %s)", name, strings.Join(RoleNames(), ", "))
}

// Find returns the named role.
func Find(name string) (Role, error) {
	for _, r := range Roles() {
		if r.Name == name {
			return r, nil
		}
	}
	return Role{}, unknownRole(name)
}
