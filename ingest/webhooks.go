package ingest

import (
	"context"

	"github.com/kilnhq/kiln/ingest/internal/httpapi"
)

// webhookAppender hands verified webhooks to POST /events' own path.
type webhookAppender struct{ h *httpapi.Handler }

func (a webhookAppender) AppendEvent(ctx context.Context, event []byte) (quarantined bool, err error) {
	return a.h.AppendOne(ctx, event)
}
