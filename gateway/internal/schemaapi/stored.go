package schemaapi

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas/catalog"
)

// pageSize is how many stored events one read returns.
const pageSize = 1000

// StoredFrom reads a type's most recent stored events, newest first, from
// the recent cache while it holds them, then from the history.
func StoredFrom(recent *readmodel.Recent, history *readmodel.History) catalog.Stored {
	return func(ctx context.Context, eventType string, n int) ([]json.RawMessage, error) {
		var out []json.RawMessage
		q := readmodel.Query{Types: []string{eventType}}
		fromCache := recent != nil
		for len(out) < n {
			q.Limit = min(pageSize, n-len(out))
			if fromCache {
				page, ok, _, err := recent.Find(ctx, q)
				if err == nil && ok {
					var events []json.RawMessage
					if err := json.Unmarshal(page.Body, &events); err != nil {
						return nil, fmt.Errorf("recent cache page: %w", err)
					}
					out = append(out, events...)
					if page.Next == nil || len(events) == 0 {
						return out, nil
					}
					q.After = page.Next
					continue
				}
				fromCache = false // the rest from the history, from the same position
			}
			events, next, err := history.Find(ctx, q)
			if err != nil {
				return nil, err
			}
			for _, e := range events {
				b, err := json.Marshal(e)
				if err != nil {
					return nil, err
				}
				out = append(out, b)
			}
			if next == nil || len(events) == 0 {
				return out, nil
			}
			q.After = next
		}
		return out, nil
	}
}
