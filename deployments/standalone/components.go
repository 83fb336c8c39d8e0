package standalone

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/notifier"
	"github.com/kilnhq/kiln/projector"
	"github.com/kilnhq/kiln/schemas"
)

// knownServices are the services the standalone can run; KILN_SERVICES
// picks a subset.
func knownServices() []string {
	return []string{"ingest", "projector", "notifier", "gateway", "webhooks"}
}

// component is one service in the standalone process.
type component struct {
	// name is the role in readiness answers (/readyz/<name>); parts
	// without one are named by position.
	name     string
	ready    func(context.Context) error
	register func(fiber.Router)          // nil: no public routes
	run      func(context.Context) error // nil: nothing to run
}

// buildComponents creates the configured services, in dependency order.
func buildComponents(ctx context.Context, cfg Config, c *clients, js jetstream.JetStream, reg prometheus.Registerer, log *slog.Logger) ([]component, error) {
	// The stream is ingest's to create, but consumers need it even when
	// ingest is not among the services.
	if _, err := schemas.EnsureStream(ctx, js, cfg.Ingest.Stream); err != nil {
		return nil, err
	}
	db := c.mongo.Database(cfg.Projector.MongoDatabase)
	var parts []component
	if cfg.runs("ingest") {
		svc, err := ingest.New(ctx, cfg.Ingest, ingest.Deps{NATS: c.ingestNATS, Metrics: reg, Log: log.With("service", "ingest")})
		if err != nil {
			return nil, err
		}
		parts = append(parts, component{name: "ingest", ready: svc.Ready, register: svc.Register, run: svc.Run})
		rt, err := newRealtime(cfg, svc, db, js, reg, log)
		if err != nil {
			return nil, err
		}
		rt.name = "realtime"
		parts = append(parts, rt)
	}
	if cfg.runs("projector") {
		svc, err := projector.New(ctx, cfg.Projector, projector.Deps{
			JetStream: js, Mongo: db, Redis: c.redis, Metrics: reg, Log: log.With("service", "projector"),
		})
		if err != nil {
			return nil, err
		}
		parts = append(parts, component{name: "projector", ready: svc.Ready, run: svc.Run})
	}
	if cfg.runs("notifier") {
		// The alerts live beside the history, where the gateway reads them;
		// channels without settings (Slack, email) stay off and the log
		// channel shows what would be sent.
		svc, err := notifier.New(ctx, cfg.Notifier, notifier.Deps{
			JetStream: js, Mongo: db, Metrics: reg, Log: log.With("service", "notifier"),
		})
		if err != nil {
			return nil, err
		}
		parts = append(parts, component{name: "notifier", ready: svc.Ready, run: svc.Run})
	}
	if cfg.runs("gateway") {
		svc, err := gateway.New(cfg.Gateway, gateway.Deps{
			Mongo: db, Redis: c.redis, JetStream: js, Metrics: reg, Log: log.With("service", "gateway"),
		})
		if err != nil {
			return nil, err
		}
		parts = append(parts, component{name: "gateway", ready: svc.Ready, register: svc.Register, run: svc.Run})
	}
	if cfg.runs("webhooks") {
		part, err := newWebhooks(ctx, cfg, db, js, log)
		if err != nil {
			return nil, err
		}
		part.name = "webhooks"
		parts = append(parts, part)
	}
	return parts, nil
}

func (c *Config) runs(service string) bool { return slices.Contains(c.Services, service) }

func validateServices(services []string) error {
	if len(services) == 0 {
		return fmt.Errorf("KILN_SERVICES must name at least one of %v", knownServices())
	}
	for _, s := range services {
		if !slices.Contains(knownServices(), s) {
			return fmt.Errorf("KILN_SERVICES: unknown service %q (known: %v)", s, knownServices())
		}
	}
	return nil
}
