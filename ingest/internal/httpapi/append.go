package httpapi

import (
	"context"
	"net/http"

	"github.com/kilnhq/kiln/ingest/internal/eventbody"
	"github.com/kilnhq/kiln/schemas/problem"
)

// AppendOne validates and appends one event object exactly as a
// single-object POST /events does (same schemas, same idempotent publish),
// for callers inside ingest such as the webhook receiver. It returns nil
// once the event is stored or was stored before under its id, else the
// *problem.Details a client would get.
func (h *Handler) AppendOne(ctx context.Context, raw []byte) error {
	items, single, err := eventbody.Split(eventbody.FormatJSON, raw, 1)
	if err != nil || !single {
		return problem.New(http.StatusBadRequest, "malformed-json", "Malformed JSON", "the event is not one JSON object")
	}
	results := h.normalize(items, "", true)
	h.publish(ctx, results)
	if r := results[0]; r.Error != nil {
		return r.Error
	}
	return nil
}
