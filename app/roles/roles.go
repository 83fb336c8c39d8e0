// Package roles builds each of Kiln's roles — ingest, projector, notifier,
// gateway, webhooks, realtime — as a runner.Part from its configuration
// and its connections. The standalone (`kiln run`) builds several of them
// on shared connections; `kiln serve <role>` builds one on its own.
package roles

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/app/runner"
	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/notifier"
	"github.com/kilnhq/kiln/projector"
	"github.com/kilnhq/kiln/webhooks"
	"github.com/kilnhq/kiln/webhooks/adminapi"
)

// Deps are the connections and telemetry the roles are built on; each
// role uses the ones it needs.
type Deps struct {
	// Append is the connection events are appended on (connect.Append:
	// no reconnect buffer); JetStream is on the consumers' connection.
	Append    *nats.Conn
	JetStream jetstream.JetStream
	Mongo     *mongo.Database
	Redis     redis.UniversalClient
	Metrics   prometheus.Registerer
	// Tracer records the role's spans; nil is no tracing.
	Tracer trace.TracerProvider
	Log    *slog.Logger
	// Named is set when Log already names the service (a process of one
	// role, `kiln serve`); else each role's records get its name.
	Named bool
}

// log is the role's logger: its records say which service wrote them,
// once.
func (d Deps) log(service string) *slog.Logger {
	if d.Named {
		return d.Log
	}
	return d.Log.With("service", service)
}

// Ingest is POST /events and inbound POST /webhooks/{provider}. The
// service is returned too: the realtime role appends through it.
func Ingest(ctx context.Context, cfg ingest.Config, d Deps) (*ingest.Service, runner.Part, error) {
	svc, err := ingest.New(ctx, cfg, ingest.Deps{NATS: d.Append, Metrics: d.Metrics, Log: d.log("ingest"), Tracer: d.Tracer})
	if err != nil {
		return nil, runner.Part{}, err
	}
	return svc, runner.Part{Name: "ingest", Ready: svc.Ready, Register: svc.Register, Run: svc.Run}, nil
}

// Projector builds the read models from the stream.
func Projector(ctx context.Context, cfg projector.Config, d Deps) (runner.Part, error) {
	svc, err := projector.New(ctx, cfg, projector.Deps{
		JetStream: d.JetStream, Mongo: d.Mongo, Redis: d.Redis, Metrics: d.Metrics, Log: d.log("projector"), Tracer: d.Tracer,
	})
	if err != nil {
		return runner.Part{}, err
	}
	return runner.Part{Name: "projector", Ready: svc.Ready, Run: svc.Run}, nil
}

// Notifier evaluates the alert rules and delivers alerts. Its alerts live
// beside the history, where the gateway reads them.
func Notifier(ctx context.Context, cfg notifier.Config, d Deps) (runner.Part, error) {
	svc, err := notifier.New(ctx, cfg, notifier.Deps{
		JetStream: d.JetStream, Mongo: d.Mongo, Metrics: d.Metrics, Log: d.log("notifier"), Tracer: d.Tracer,
	})
	if err != nil {
		return runner.Part{}, err
	}
	return runner.Part{Name: "notifier", Ready: svc.Ready, Run: svc.Run}, nil
}

// Gateway is the read API, the live stream and the dashboard.
func Gateway(cfg gateway.Config, d Deps) (runner.Part, error) {
	svc, err := gateway.New(cfg, gateway.Deps{
		Mongo: d.Mongo, Redis: d.Redis, JetStream: d.JetStream, Metrics: d.Metrics, Log: d.log("gateway"), Tracer: d.Tracer,
	})
	if err != nil {
		return runner.Part{}, err
	}
	return runner.Part{Name: "gateway", Ready: svc.Ready, Register: svc.Register, Run: svc.Run}, nil
}

// Webhooks is the outbound webhooks service: its admin API on the public
// port and its dispatcher. (Inbound POST /webhooks/{provider} comes with
// ingest.)
func Webhooks(ctx context.Context, cfg webhooks.Config, d Deps) (runner.Part, error) {
	svc, err := webhooks.New(ctx, cfg, webhooks.Deps{
		JetStream: d.JetStream, Mongo: d.Mongo, Log: d.log("webhooks"), Tracer: d.Tracer, Metrics: d.Metrics,
	})
	if err != nil {
		return runner.Part{}, err
	}
	return runner.Part{Name: "webhooks", Ready: svc.Ready, Register: svc.Register, Run: svc.Run, ServerOnly: adminapi.Prefixes()}, nil
}
