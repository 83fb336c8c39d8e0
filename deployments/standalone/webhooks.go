package standalone

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/kilnhq/kiln/webhooks"
)

// NewWebhooks is the outbound webhooks service: its admin API on the
// public port and its dispatcher. (Inbound POST /webhooks/{provider} comes
// with ingest.)
func NewWebhooks(ctx context.Context, cfg webhooks.Config, db *mongo.Database, js jetstream.JetStream, log *slog.Logger) (Part, error) {
	return newWebhooks(ctx, cfg, webhooks.Deps{JetStream: js, Mongo: db, Log: log.With("service", "webhooks")})
}

// newWebhooks is NewWebhooks on the given deps (the standalone's tracer).
func newWebhooks(ctx context.Context, cfg webhooks.Config, deps webhooks.Deps) (Part, error) {
	svc, err := webhooks.New(ctx, cfg, deps)
	if err != nil {
		return Part{}, err
	}
	return Part{Name: "webhooks", Ready: svc.Ready, Register: svc.Register, Run: svc.Run}, nil
}
