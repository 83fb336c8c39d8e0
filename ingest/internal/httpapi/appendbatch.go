package httpapi

import (
	"context"

	"github.com/kilnhq/kiln/ingest/internal/eventbody"
)

// AppendBatch validates and stores the events of body, a JSON array of
// event objects, exactly as POST /events does with such a body (same
// validation, ids, idempotency and durability), for transports other than
// HTTP (gRPC). It returns one result per item, in order; an error means the
// body as a whole was refused (not a JSON array of objects, empty, or over
// MaxBatch: see eventbody's errors).
func (h *Handler) AppendBatch(ctx context.Context, body []byte) ([]ItemResult, error) {
	items, _, err := eventbody.Split(eventbody.FormatJSON, body, h.MaxBatch)
	if err != nil {
		return nil, err
	}
	h.Metrics.BatchSize.Observe(float64(len(items)))
	results := h.normalize(items, "", false)
	h.record(ctx, results, "", false)
	h.publish(ctx, results)
	return results, nil
}
