package httpapi

import (
	"context"
	"time"

	"github.com/kilnhq/kiln/ingest/internal/metrics"
	"github.com/kilnhq/kiln/schemas/problem"
	"github.com/kilnhq/kiln/schemas/rejections"
)

// noteMalformed records, best effort, a body that is not well-formed JSON
// (answered 400 malformed-json) as sent: no event can be read from it, so
// its record has no type or id and is not recoverable. keyID names the
// request's credential.
func (h *Handler) noteMalformed(body []byte, err error, keyID string) {
	h.NoteUnreadable(rejections.Malformed(body, err.Error()), keyID)
}

// NoteUnreadable records, best effort, rec: a body no event could be read
// from (rejections.Malformed), e.g. a verified webhook payload that is not
// JSON or has no type. keyID names the credential that sent it.
func (h *Handler) NoteUnreadable(rec *rejections.Record, keyID string) {
	rec.KeyID, rec.Time = keyID, h.now().UTC()
	h.Metrics.Refusals.Add(rec.EventType, string(rec.Outcome), rec.Reasons)
	if h.Rejections != nil {
		h.Rejections.Note([]*rejections.Record{rec})
	}
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// record keeps the request's quarantined events in the REJECTIONS stream,
// waiting for the stream's ack (an item not confirmed becomes a 503: it is
// never answered as kept when it was not), and records its refused ones
// best effort, without waiting. keyID names the request's credential.
func (h *Handler) record(ctx context.Context, results []ItemResult, keyID string, single bool) {
	var kept, noted []*rejections.Record
	var keptAt []int
	at := h.now().UTC()
	for i := range results {
		r := &results[i]
		if r.refused == nil {
			continue
		}
		rec := r.refused
		rec.KeyID, rec.Time = keyID, at
		h.Metrics.Refusals.Add(rec.EventType, string(rec.Outcome), rec.Reasons)
		if r.Quarantined {
			kept, keptAt = append(kept, rec), append(keptAt, i)
		} else {
			noted = append(noted, rec)
		}
	}
	if h.Rejections == nil {
		return
	}
	if len(noted) > 0 {
		h.Rejections.Note(noted)
	}
	if len(kept) == 0 {
		return
	}
	for k, err := range h.Rejections.Keep(ctx, kept) {
		if err == nil {
			h.Metrics.Quarantined.Inc()
			continue
		}
		r := &results[keptAt[k]]
		h.Log.Warn("quarantine not kept", "id", r.ID, "err", err)
		h.Metrics.Rejected.WithLabelValues(metrics.ReasonUnavailable).Inc()
		r.Quarantined = false
		r.Error = problem.Unavailable("the rejections stream did not confirm the quarantined event in time; retry with the same id", h.RetryAfter)
	}
}
