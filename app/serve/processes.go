package serve

import (
	"context"

	"github.com/kilnhq/kiln/app/roles"
	"github.com/kilnhq/kiln/app/runner"
	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/notifier"
	"github.com/kilnhq/kiln/projector"
)

// gatewayBodyLimit is the largest request body the gateway reads: it
// serves GETs only.
const gatewayBodyLimit = 64 * 1024

// role is a process of one part: s's connections, then build.
func role(name string, l runner.Listeners, s stores, build func(context.Context, roles.Deps) (runner.Part, error)) runner.Process {
	s.name = name
	return runner.Process{Name: name, Listeners: l, Build: func(ctx context.Context, rd runner.Deps) ([]runner.Part, error) {
		d, err := s.open(rd)
		if err != nil {
			return nil, err
		}
		p, err := build(ctx, d)
		return []runner.Part{p}, err
	}}
}

func ingestProcess(env map[string]string) (runner.Process, error) {
	cfg, err := ingest.LoadConfig(env)
	if err != nil {
		return runner.Process{}, err
	}
	p := role("kiln-ingest",
		runner.Listeners{HTTPAddr: cfg.HTTPAddr, AdminAddr: cfg.AdminAddr, BodyLimit: cfg.MaxBodyBytes, Origins: cfg.AllowedOrigins},
		stores{appendNATS: cfg.NATSURL},
		func(ctx context.Context, d roles.Deps) (runner.Part, error) {
			_, part, err := roles.Ingest(ctx, cfg, d)
			return part, err
		})
	p.Tracing = cfg.Telemetry
	return p, nil
}

func projectorProcess(env map[string]string) (runner.Process, error) {
	cfg, err := projector.LoadConfig(env)
	if err != nil {
		return runner.Process{}, err
	}
	p := role("kiln-projector", runner.Listeners{AdminAddr: cfg.AdminAddr},
		stores{consumeNATS: cfg.NATSURL, mongoURI: cfg.MongoURI, mongoDatabase: cfg.MongoDatabase, redisURL: cfg.RedisURL},
		func(ctx context.Context, d roles.Deps) (runner.Part, error) { return roles.Projector(ctx, cfg, d) })
	p.Tracing = cfg.Telemetry
	return p, nil
}

// notifierProcess checks the rules file first: an invalid one stops the
// notifier before it connects anywhere.
func notifierProcess(env map[string]string) (runner.Process, error) {
	cfg, err := notifier.LoadConfig(env)
	if err != nil {
		return runner.Process{}, err
	}
	if _, err := notifier.CheckRules(cfg); err != nil {
		return runner.Process{}, err
	}
	p := role("kiln-notifier", runner.Listeners{AdminAddr: cfg.AdminAddr},
		stores{consumeNATS: cfg.NATSURL, mongoURI: cfg.MongoURI, mongoDatabase: cfg.MongoDatabase},
		func(ctx context.Context, d roles.Deps) (runner.Part, error) { return roles.Notifier(ctx, cfg, d) })
	p.Tracing = cfg.Telemetry
	return p, nil
}

func gatewayProcess(env map[string]string) (runner.Process, error) {
	cfg, err := gateway.LoadConfig(env)
	if err != nil {
		return runner.Process{}, err
	}
	p := role("kiln-gateway",
		runner.Listeners{HTTPAddr: cfg.HTTPAddr, AdminAddr: cfg.AdminAddr, BodyLimit: gatewayBodyLimit, Origins: cfg.AllowedOrigins},
		stores{consumeNATS: cfg.NATSURL, mongoURI: cfg.MongoURI, mongoDatabase: cfg.MongoDatabase, redisURL: cfg.RedisURL},
		func(_ context.Context, d roles.Deps) (runner.Part, error) { return roles.Gateway(cfg, d) })
	p.Tracing = cfg.Telemetry
	return p, nil
}

func webhooksProcess(env map[string]string) (runner.Process, error) {
	cfg, err := LoadWebhooksConfig(env)
	if err != nil {
		return runner.Process{}, err
	}
	p := role("kiln-webhooks", cfg.listeners(),
		stores{consumeNATS: cfg.NATSURL, mongoURI: cfg.MongoURI, mongoDatabase: cfg.MongoDatabase},
		func(ctx context.Context, d roles.Deps) (runner.Part, error) {
			return roles.Webhooks(ctx, cfg.Webhooks, d)
		})
	p.Tracing = cfg.Telemetry
	return p, nil
}

// realtimeProcess appends orders and chat messages through ingest's path
// (its append connection; the feed consumes on the other one) and serves
// ingest's readiness and resolver (writes left in doubt) beside the
// realtime servers. Tracing is ingest's (OTEL_*, read with ingest's
// settings).
func realtimeProcess(env map[string]string) (runner.Process, error) {
	cfg, err := LoadRealtimeConfig(env)
	if err != nil {
		return runner.Process{}, err
	}
	s := stores{name: "kiln-realtime", appendNATS: cfg.NATSURL, consumeNATS: cfg.NATSURL,
		mongoURI: cfg.MongoURI, mongoDatabase: cfg.MongoDatabase}
	return runner.Process{Name: s.name, Listeners: cfg.listeners(), Tracing: cfg.Ingest.Telemetry,
		Build: func(ctx context.Context, rd runner.Deps) ([]runner.Part, error) {
			d, err := s.open(rd)
			if err != nil {
				return nil, err
			}
			ing, part, err := roles.Ingest(ctx, cfg.Ingest, d)
			if err != nil {
				return nil, err
			}
			part.Register = nil // POST /events stays with the ingest role
			rt, err := roles.Realtime(roles.RealtimeConfig{GRPC: cfg.GRPC, SocketIO: cfg.SocketIO, ReadKeys: cfg.ReadKeys,
				IngestKeys: cfg.Ingest.APIKeys, PublishableKeys: cfg.Ingest.PublishableKeys, Tokens: cfg.Tokens,
				Origins: cfg.AllowedOrigins}, ing, d)
			return []runner.Part{part, rt}, err
		}}, nil
}
