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
// once the event is stored, was stored before under its id, or was
// quarantined (kept in the REJECTIONS stream; quarantined is then true),
// else the *problem.Details a client would get. keyID names the sender's
// credential in the records of a refused event (rejections.KeyID).
func (h *Handler) AppendOne(ctx context.Context, raw []byte, keyID string) (quarantined bool, err error) {
	items, single, err := eventbody.Split(eventbody.FormatJSON, raw, 1)
	if err != nil || !single {
		return false, problem.New(http.StatusBadRequest, "malformed-json", "Malformed JSON", "the event is not one JSON object")
	}
	results := h.normalize(items, "", true)
	h.record(ctx, results, keyID, true)
	h.publish(ctx, results)
	if r := results[0]; r.Error != nil {
		return false, r.Error
	}
	return results[0].Quarantined, nil
}

// AppendAs validates the event object raw against the schemas in force and
// appends it under id, through the id ledger (a second call, or a client
// event with the same id, is a duplicate): how `kiln rejections recover`
// stores a kept event under the id its client was answered. With dryRun
// it only validates. Nothing is recorded in the REJECTIONS stream.
func (h *Handler) AppendAs(ctx context.Context, raw []byte, id string, dryRun bool) ItemResult {
	items, single, err := eventbody.Split(eventbody.FormatJSON, raw, 1)
	if err != nil || !single {
		return ItemResult{Error: problem.New(http.StatusBadRequest, "malformed-json", "Malformed JSON", "the kept body is not one JSON object")}
	}
	results := h.normalize(items, id, true)
	r := &results[0]
	if r.Quarantined { // its type's schema still refuses it
		r.Error = problem.Invalid("the event does not match its schema", problem.FromSchema(nil, r.refused.Reasons))
		r.Quarantined, r.refused = false, nil
	}
	if r.valid {
		r.clientID = true // the id its client was answered: a retry must find it
		if !dryRun {
			h.publish(ctx, results)
		}
	}
	return *r
}
