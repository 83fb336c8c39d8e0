package readmodel_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// Issue 24 item 3: the schema version that validated an event is kept by
// the history and the recent-events cache, and absent for a type with no
// schema (not "schemaVersion":0).
func TestReadModelsKeepSchemaVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := readmodel.NewHistory(testsupport.StartMongo(t).Database(t), readmodel.DefaultCollections())
	require.NoError(t, h.EnsureIndexes(ctx))
	rc := readmodel.NewRecent(testsupport.StartRedis(t).Client(t), readmodel.RecentOptions{MaxEvents: 10})
	now := time.Now()
	ms := now.UnixMilli()
	tests := []struct {
		id      string
		version int
	}{
		{"registered-v2", 2},
		{"embedded-v1", 1},
		{"no-schema", 0},
	}
	var evs []schemas.Event
	for i, tt := range tests {
		evs = append(evs, schemas.Event{ID: tt.id, EventType: "t" + tt.id, UserID: "u", Timestamp: ms - int64(i),
			ReceivedAt: ms, SchemaVersion: tt.version, Seq: uint64(i + 1), Metadata: json.RawMessage(`{"k":1}`)})
	}
	_, err := h.Apply(ctx, evs)
	require.NoError(t, err)
	epoch, _, err := rc.Start(ctx, now)
	require.NoError(t, err)
	_, err = rc.Apply(ctx, evs, now)
	require.NoError(t, err)
	done, err := rc.MarkComplete(ctx, epoch)
	require.NoError(t, err)
	require.True(t, done)
	// Given every event, as from a stream that lost none: it answers a
	// page it holds only part of.
	done, err = rc.MarkWhole(ctx, epoch)
	require.NoError(t, err)
	require.True(t, done)
	require.NoError(t, rc.SetPositions(ctx, uint64(len(evs)), uint64(len(evs))))

	page, _, err := h.Find(ctx, readmodel.Query{Limit: 10})
	require.NoError(t, err)
	require.Len(t, page, len(tests))
	cached, ok, reason, err := rc.Find(ctx, readmodel.Query{Limit: 10})
	require.NoError(t, err)
	require.True(t, ok, reason)
	var fromCache []map[string]any
	require.NoError(t, json.Unmarshal(cached.Body, &fromCache))
	require.Len(t, fromCache, len(tests))
	for i, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, err := h.Get(ctx, tt.id)
			require.NoError(t, err)
			require.Equal(t, tt.version, got.SchemaVersion, "GET /events/{id} (MongoDB)")
			require.Equal(t, tt.version, page[i].SchemaVersion, "GET /events (MongoDB)")
			b, err := json.Marshal(got)
			require.NoError(t, err)
			var doc map[string]any
			require.NoError(t, json.Unmarshal(b, &doc))
			for name, d := range map[string]map[string]any{"MongoDB": doc, "cache": fromCache[i]} {
				require.Equal(t, tt.id, d["id"], name)
				if tt.version == 0 {
					require.NotContains(t, d, "schemaVersion", "%s: a type with no schema has none", name)
				} else {
					require.EqualValues(t, tt.version, d["schemaVersion"], name)
				}
			}
		})
	}
}
