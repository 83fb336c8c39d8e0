package standalone

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/httpserver"
)

// Listeners are where a Kiln process serves its parts.
type Listeners struct {
	// HTTPAddr is the public listener: every part's routes.
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

// ServeParts serves the parts' routes and readiness on the listeners and
// runs the parts until ctx is done or one fails, then shuts the listeners
// down gracefully. Readiness is per part: /readyz is ready when every part
// is and names the parts and dependencies that are not; /readyz/<part>
// (e.g. /readyz/ingest) answers for one, so ingest stays ready for writes
// while Redis, which only the projector and gateway need, is down.
func ServeParts(ctx context.Context, l Listeners, parts []Part, reg *prometheus.Registry, log *slog.Logger) error {
	roles := readinessRoles(parts)
	ready := httpserver.RolesReady(roles)
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
