package standalone

import (
	"context"
	"fmt"
	"slices"

	"github.com/kilnhq/kiln/app/roles"
	"github.com/kilnhq/kiln/app/runner"
	"github.com/kilnhq/kiln/schemas"
)

// knownServices are the services the standalone can run; KILN_SERVICES
// picks a subset.
func knownServices() []string {
	return []string{"ingest", "projector", "notifier", "gateway", "webhooks"}
}

// buildComponents creates the configured services, in dependency order.
// They share d's connections, metrics registry and tracer provider.
func buildComponents(ctx context.Context, cfg Config, d roles.Deps) ([]runner.Part, error) {
	// The stream is ingest's to create, but consumers need it even when
	// ingest is not among the services.
	if _, err := schemas.SetUpStream(ctx, d.JetStream, cfg.Ingest.Stream, d.Log); err != nil {
		return nil, err
	}
	var parts []runner.Part
	add := func(p runner.Part, err error) error {
		if err == nil {
			parts = append(parts, p)
		}
		return err
	}
	if cfg.runs("ingest") {
		svc, part, err := roles.Ingest(ctx, cfg.Ingest, d)
		if err := add(part, err); err != nil {
			return nil, err
		}
		err = add(roles.Realtime(roles.RealtimeConfig{GRPC: cfg.GRPC, SocketIO: cfg.SocketIO, ReadKeys: cfg.Gateway.ReadKeys,
			IngestKeys: cfg.Ingest.APIKeys, PublishableKeys: cfg.Ingest.PublishableKeys, Tokens: cfg.Gateway.Tokens,
			Origins: cfg.AllowedOrigins}, svc, d))
		if err != nil {
			return nil, err
		}
	}
	if cfg.runs("projector") {
		if err := add(roles.Projector(ctx, cfg.Projector, d)); err != nil {
			return nil, err
		}
	}
	if cfg.runs("notifier") {
		// Channels without settings (Slack, email) stay off and the log
		// channel shows what would be sent.
		if err := add(roles.Notifier(ctx, cfg.Notifier, d)); err != nil {
			return nil, err
		}
	}
	if cfg.runs("gateway") {
		if err := add(roles.Gateway(cfg.Gateway, d)); err != nil {
			return nil, err
		}
	}
	if cfg.runs("webhooks") {
		if err := add(roles.Webhooks(ctx, cfg.Webhooks, d)); err != nil {
			return nil, err
		}
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
