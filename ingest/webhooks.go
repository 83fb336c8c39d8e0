package ingest

import (
	"context"

	"github.com/kilnhq/kiln/ingest/internal/httpapi"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/problem"
	"github.com/kilnhq/kiln/schemas/rejections"
)

// webhookAppender hands verified webhooks to POST /events' own path.
type webhookAppender struct{ h *httpapi.Handler }

func (a webhookAppender) AppendEvent(ctx context.Context, provider string, event []byte) (quarantined bool, err error) {
	return a.h.AppendOne(ctx, event, rejections.WebhookKeyID(provider))
}

// RecordUnmapped keeps a verified payload that is not an event in the
// REJECTIONS stream, as sent, not recoverable (see rejections.Malformed).
func (a webhookAppender) RecordUnmapped(provider string, body []byte, p *problem.Details) {
	rec := rejections.Malformed(body, "webhook "+provider+": "+p.Detail)
	for _, e := range p.Errors {
		rec.Reasons = append(rec.Reasons, schemas.FieldError{Field: e.Field, Message: e.Message})
	}
	a.h.NoteUnreadable(rec, rejections.WebhookKeyID(provider))
}
