// Package serve runs one Kiln role per process (`kiln serve <role>`): for
// each role, its configuration read from the environment, the connections
// it opens, and the parts (package roles) it serves — all run by
// package runner, as the standalone is.
package serve

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/caarlos0/env/v11"

	"github.com/kilnhq/kiln/app/runner"
	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/notifier"
	"github.com/kilnhq/kiln/projector"
)

// bodyLimit is the largest request body on the webhooks and realtime
// roles' public listeners (admin API JSON, Socket.IO polling posts).
const bodyLimit = 1 << 20

// Role is one role `kiln serve` runs.
type Role struct {
	Name string
	// Short says what it does, for `kiln serve <role> --help`.
	Short string
	// Listens names its listeners and their default addresses.
	Listens string
	// process reads the role's configuration from the environment and
	// says what its process runs.
	process func(env map[string]string) (runner.Process, error)
}

// Run runs the role configured from environ until ctx is done. Every
// role's admin listener reads the one ADMIN_PPROF.
func (r Role) Run(ctx context.Context, environ map[string]string, log *slog.Logger) error {
	p, err := r.process(environ)
	if err != nil {
		return err
	}
	admin, err := env.ParseAsWithOptions[httpserver.AdminConfig](env.Options{Environment: environ})
	if err != nil {
		return fmt.Errorf("%s config: ADMIN_PPROF: %w", r.Name, err) // its one setting
	}
	p.Listeners.Pprof = admin.AdminPprof
	return runner.Run(ctx, p, log)
}

// Roles are the roles, in pipeline order.
func Roles() []Role {
	return []Role{
		{"ingest", "Accept events (POST /events, inbound POST /webhooks/{provider}) into the EVENTS stream",
			"INGEST_ADDR :8080, admin INGEST_ADMIN_ADDR 127.0.0.1:9101", configured(ingest.LoadConfig, ingestProcess)},
		{"projector", "Build the read models (MongoDB history, Redis counters and recent cache) from the stream",
			"admin PROJECTOR_ADMIN_ADDR 127.0.0.1:9103", configured(projector.LoadConfig, projectorProcess)},
		{"notifier", "Evaluate the alert rules over the stream and deliver alerts (Slack, email, log)",
			"admin NOTIFIER_ADMIN_ADDR 127.0.0.1:9104", configured(notifier.LoadConfig, notifierProcess)},
		{"gateway", "Serve the read API, the live stream (GET /stream), the dashboard and the API docs",
			"GATEWAY_ADDR :8081, admin GATEWAY_ADMIN_ADDR 127.0.0.1:9102", configured(gateway.LoadConfig, gatewayProcess)},
		{"webhooks", "Dispatch outbound webhooks and serve their admin API (/webhook-endpoints, /webhook-deliveries)",
			"WEBHOOKS_ADDR :8082, admin WEBHOOKS_ADMIN_ADDR 127.0.0.1:9105", configured(LoadWebhooksConfig, webhooksProcess)},
		{"realtime", "Serve gRPC (orders.OrderService, kiln.v1.EventService) and Socket.IO (/chat, /notifications)",
			"gRPC GRPC_ADDR :9090, Socket.IO REALTIME_ADDR :8083, admin REALTIME_ADMIN_ADDR 127.0.0.1:9106", configured(LoadRealtimeConfig, realtimeProcess)},
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
