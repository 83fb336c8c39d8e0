package standalone

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/kilnhq/kiln/webhooks"
)

// newWebhooks is the outbound webhooks service: its admin API on the
// public port and its dispatcher. (Inbound POST /webhooks/{provider} comes
// with ingest.)
func newWebhooks(ctx context.Context, cfg Config, db *mongo.Database, js jetstream.JetStream, log *slog.Logger) (component, error) {
	svc, err := webhooks.New(ctx, cfg.Webhooks, webhooks.Deps{JetStream: js, Mongo: db, Log: log.With("service", "webhooks")})
	if err != nil {
		return component{}, err
	}
	return component{ready: svc.Ready, register: svc.Register, run: svc.Run}, nil
}
