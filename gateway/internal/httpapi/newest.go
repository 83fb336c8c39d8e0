package httpapi

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// Newest returns the n newest stored events as a JSON array, newest first,
// as GET /events?limit=n answers them: from the recent-events cache when it
// holds them (cached), else MongoDB.
func (h *Handler) Newest(ctx context.Context, n int) (body []byte, cached bool, err error) {
	q := readmodel.Query{Limit: n}
	if h.Recent != nil {
		page, ok, _, err := h.Recent.Find(ctx, q)
		if err == nil && ok {
			return page.Body, true, nil
		}
	}
	events, _, err := h.History.Find(ctx, q)
	if err != nil {
		return nil, false, fmt.Errorf("read the %d newest events: %w", n, err)
	}
	if events == nil {
		events = []schemas.Event{}
	}
	body, err = json.Marshal(events)
	return body, false, err
}
