package standalone

import (
	"context"

	"github.com/kilnhq/kiln/webhooks"
	"github.com/kilnhq/kiln/webhooks/adminapi"
)

// NewWebhooks is the outbound webhooks service: its admin API on the
// public port and its dispatcher. (Inbound POST /webhooks/{provider} comes
// with ingest.)
func NewWebhooks(ctx context.Context, cfg webhooks.Config, deps webhooks.Deps) (Part, error) {
	svc, err := webhooks.New(ctx, cfg, deps)
	if err != nil {
		return Part{}, err
	}
	return Part{Name: "webhooks", Ready: svc.Ready, Register: svc.Register, Run: svc.Run, ServerOnly: adminapi.Prefixes()}, nil
}
