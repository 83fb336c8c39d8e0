package schemaapi

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/kilnhq/kiln/readmodel"
)

// Activity is what the read models say about a type's stored events.
type Activity struct {
	// LastSeen is the timestamp (Unix ms) of the type's newest stored
	// event in the recent-events cache; 0 when the cache holds none (the
	// type's events are older than the cache, or there are none).
	LastSeen int64
	// LastReceived is when ingest received that event (Unix ms).
	LastReceived int64
	// LastMinute counts its events in the minute up to now (by event
	// time); Stored every one projected.
	LastMinute, Stored int64
}

// ActivityFunc reads the activity of types; an error leaves it out of the
// answer (the registry answers without the read models).
type ActivityFunc func(ctx context.Context, types []string) (map[string]Activity, error)

// ActivityFrom reads activity from the counters (a shared GET /metrics
// snapshot) and the recent cache: one snapshot and one cache query per
// type, no MongoDB read.
func ActivityFrom(snapshot func(context.Context) ([]byte, error), recent *readmodel.Recent) ActivityFunc {
	return func(ctx context.Context, types []string) (map[string]Activity, error) {
		b, err := snapshot(ctx)
		if err != nil {
			return nil, err
		}
		var m readmodel.Metrics
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("metrics snapshot: %w", err)
		}
		out := make(map[string]Activity, len(types))
		for _, t := range types {
			a := Activity{Stored: m.Totals[t]}
			for _, tc := range m.ByType {
				if tc.Type == t {
					a.LastMinute = tc.Count
				}
			}
			if a.Stored > 0 && recent != nil {
				page, ok, _, err := recent.Find(ctx, readmodel.Query{Types: []string{t}, Limit: 1})
				if err != nil {
					return nil, err
				}
				var newest []struct {
					Timestamp  int64 `json:"timestamp"`
					ReceivedAt int64 `json:"receivedAt"`
				}
				if ok && json.Unmarshal(page.Body, &newest) == nil && len(newest) > 0 {
					a.LastSeen, a.LastReceived = newest[0].Timestamp, newest[0].ReceivedAt
				}
			}
			out[t] = a
		}
		return out, nil
	}
}
