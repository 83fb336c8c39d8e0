package serve

import (
	"context"

	"github.com/kilnhq/kiln/app/roles"
	"github.com/kilnhq/kiln/app/runner"
	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/notifier"
	"github.com/kilnhq/kiln/projector"
	"github.com/kilnhq/kiln/telemetry"
)

// gatewayBodyLimit is the largest request body the gateway reads: it
// serves GETs only.
const gatewayBodyLimit = 64 * 1024

// configured is a role's process as its configuration, read from the
// environment by load, decides it.
func configured[C any](load func(map[string]string) (C, error), process func(C) (runner.Process, error)) func(map[string]string) (runner.Process, error) {
	return func(env map[string]string) (runner.Process, error) {
		cfg, err := load(env)
		if err != nil {
			return runner.Process{}, err
		}
		return process(cfg)
	}
}

// onePart is a process that serves one part: its stores' connections,
// then build.
type onePart struct {
	name      string
	listeners runner.Listeners
	tracing   telemetry.Config
	stores    stores
	build     func(context.Context, roles.Deps) (runner.Part, error)
}

func (o onePart) process() runner.Process {
	s := o.stores
	s.name = o.name
	return runner.Process{Name: o.name, Listeners: o.listeners, Tracing: o.tracing,
		Build: func(ctx context.Context, rd runner.Deps) ([]runner.Part, error) {
			d, err := s.open(rd)
			if err != nil {
				return nil, err
			}
			p, err := o.build(ctx, d)
			return []runner.Part{p}, err
		}}
}

func ingestProcess(cfg ingest.Config) (runner.Process, error) {
	return onePart{name: "kiln-ingest", tracing: cfg.Telemetry,
		listeners: runner.Listeners{HTTPAddr: cfg.HTTPAddr, AdminAddr: cfg.AdminAddr, BodyLimit: cfg.MaxBodyBytes, Origins: cfg.AllowedOrigins},
		stores:    stores{appendNATS: cfg.NATSURL},
		build: func(ctx context.Context, d roles.Deps) (runner.Part, error) {
			_, part, err := roles.Ingest(ctx, cfg, d)
			return part, err
		},
	}.process(), nil
}

func projectorProcess(cfg projector.Config) (runner.Process, error) {
	return onePart{name: "kiln-projector", tracing: cfg.Telemetry,
		listeners: runner.Listeners{AdminAddr: cfg.AdminAddr},
		stores:    stores{consumeNATS: cfg.NATSURL, mongoURI: cfg.MongoURI, mongoDatabase: cfg.MongoDatabase, redisURL: cfg.RedisURL},
		build:     func(ctx context.Context, d roles.Deps) (runner.Part, error) { return roles.Projector(ctx, cfg, d) },
	}.process(), nil
}

// notifierProcess checks the rules file first: an invalid one stops the
// notifier before it connects anywhere.
func notifierProcess(cfg notifier.Config) (runner.Process, error) {
	if _, err := notifier.CheckRules(cfg); err != nil {
		return runner.Process{}, err
	}
	return onePart{name: "kiln-notifier", tracing: cfg.Telemetry,
		listeners: runner.Listeners{AdminAddr: cfg.AdminAddr},
		stores:    stores{consumeNATS: cfg.NATSURL, mongoURI: cfg.MongoURI, mongoDatabase: cfg.MongoDatabase},
		build:     func(ctx context.Context, d roles.Deps) (runner.Part, error) { return roles.Notifier(ctx, cfg, d) },
	}.process(), nil
}

func gatewayProcess(cfg gateway.Config) (runner.Process, error) {
	return onePart{name: "kiln-gateway", tracing: cfg.Telemetry,
		listeners: runner.Listeners{HTTPAddr: cfg.HTTPAddr, AdminAddr: cfg.AdminAddr, BodyLimit: gatewayBodyLimit, Origins: cfg.AllowedOrigins},
		stores:    stores{consumeNATS: cfg.NATSURL, mongoURI: cfg.MongoURI, mongoDatabase: cfg.MongoDatabase, redisURL: cfg.RedisURL},
		build:     func(_ context.Context, d roles.Deps) (runner.Part, error) { return roles.Gateway(cfg, d) },
	}.process(), nil
}

func webhooksProcess(cfg WebhooksConfig) (runner.Process, error) {
	return onePart{name: "kiln-webhooks", tracing: cfg.Telemetry,
		listeners: cfg.listeners(),
		stores:    stores{consumeNATS: cfg.NATSURL, mongoURI: cfg.MongoURI, mongoDatabase: cfg.MongoDatabase},
		build: func(ctx context.Context, d roles.Deps) (runner.Part, error) {
			return roles.Webhooks(ctx, cfg.Webhooks, d)
		},
	}.process(), nil
}

// realtimeProcess appends orders and chat messages through ingest's path
// (its append connection; the feed consumes on the other one) and serves
// ingest's readiness and resolver (writes left in doubt) beside the
// realtime servers. Tracing is ingest's (OTEL_*, read with ingest's
// settings).
func realtimeProcess(cfg RealtimeConfig) (runner.Process, error) {
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
