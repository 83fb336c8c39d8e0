package standalone

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/notifier"
	"github.com/kilnhq/kiln/projector"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/webhooks"
)

// knownServices are the services the standalone can run; KILN_SERVICES
// picks a subset.
func knownServices() []string {
	return []string{"ingest", "projector", "notifier", "gateway", "webhooks"}
}

// Part is one service of a Kiln process: the standalone runs several,
// `kiln serve <role>` one.
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

// buildComponents creates the configured services, in dependency order.
// Every service records its spans with tp, the process's one provider.
func buildComponents(ctx context.Context, cfg Config, c *clients, js jetstream.JetStream, reg prometheus.Registerer,
	tp trace.TracerProvider, log *slog.Logger) ([]Part, error) {
	// The stream is ingest's to create, but consumers need it even when
	// ingest is not among the services.
	if _, err := schemas.EnsureStream(ctx, js, cfg.Ingest.Stream); err != nil {
		return nil, err
	}
	db := c.mongo.Database(cfg.Projector.MongoDatabase)
	var parts []Part
	if cfg.runs("ingest") {
		svc, err := ingest.New(ctx, cfg.Ingest, ingest.Deps{NATS: c.ingestNATS, Metrics: reg, Log: log.With("service", "ingest"), Tracer: tp})
		if err != nil {
			return nil, err
		}
		parts = append(parts, Part{Name: "ingest", Ready: svc.Ready, Register: svc.Register, Run: svc.Run})
		rt, err := NewRealtime(RealtimeConfig{GRPC: cfg.GRPC, SocketIO: cfg.SocketIO, ReadKeys: cfg.Gateway.ReadKeys, IngestKeys: cfg.Ingest.APIKeys,
			PublishableKeys: cfg.Ingest.PublishableKeys, Tokens: cfg.Gateway.Tokens,
			Origins: cfg.AllowedOrigins},
			RealtimeDeps{Ingest: svc, Mongo: db, JetStream: js, Metrics: reg, Log: log, Tracer: tp})
		if err != nil {
			return nil, err
		}
		parts = append(parts, rt)
	}
	if cfg.runs("projector") {
		svc, err := projector.New(ctx, cfg.Projector, projector.Deps{
			JetStream: js, Mongo: db, Redis: c.redis, Metrics: reg, Log: log.With("service", "projector"), Tracer: tp,
		})
		if err != nil {
			return nil, err
		}
		parts = append(parts, Part{Name: "projector", Ready: svc.Ready, Run: svc.Run})
	}
	if cfg.runs("notifier") {
		// The alerts live beside the history, where the gateway reads them;
		// channels without settings (Slack, email) stay off and the log
		// channel shows what would be sent.
		svc, err := notifier.New(ctx, cfg.Notifier, notifier.Deps{
			JetStream: js, Mongo: db, Metrics: reg, Log: log.With("service", "notifier"), Tracer: tp,
		})
		if err != nil {
			return nil, err
		}
		parts = append(parts, Part{Name: "notifier", Ready: svc.Ready, Run: svc.Run})
	}
	if cfg.runs("gateway") {
		svc, err := gateway.New(cfg.Gateway, gateway.Deps{
			Mongo: db, Redis: c.redis, JetStream: js, Metrics: reg, Log: log.With("service", "gateway"), Tracer: tp,
		})
		if err != nil {
			return nil, err
		}
		parts = append(parts, Part{Name: "gateway", Ready: svc.Ready, Register: svc.Register, Run: svc.Run})
	}
	if cfg.runs("webhooks") {
		part, err := NewWebhooks(ctx, cfg.Webhooks, webhooks.Deps{JetStream: js, Mongo: db, Log: log.With("service", "webhooks"), Tracer: tp,
			Metrics: reg})
		if err != nil {
			return nil, err
		}
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
