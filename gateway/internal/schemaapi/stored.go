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
// the recent cache while it holds them, then from the history. A type the
// counters (snapshot: a GET /metrics snapshot) have never counted, up to a
// stream sequence they are exact to, has none: it is answered without
// reading the history, which FerretDB scans whole for a type (minutes at
// a million events, for every new type's first schema).
func StoredFrom(snapshot func(context.Context) ([]byte, error), recent *readmodel.Recent, history *readmodel.History) catalog.Stored {
	return func(ctx context.Context, eventType string, n int) ([]json.RawMessage, error) {
		if neverCounted(ctx, snapshot, eventType) {
			return nil, nil
		}
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

// neverCounted reports whether the counters are exact up to some stream
// sequence and hold no event of eventType. An event of it after that
// sequence may be stored already (the projections run apart); a schema
// pushed in the same second as its type's first events is checked
// against the events stored before them. Counters that cannot be read
// say nothing: the stored events are read.
func neverCounted(ctx context.Context, snapshot func(context.Context) ([]byte, error), eventType string) bool {
	if snapshot == nil {
		return false
	}
	b, err := snapshot(ctx)
	if err != nil {
		return false
	}
	var m readmodel.Metrics
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	return m.AsOfSeq > 0 && m.Totals[eventType] == 0
}
