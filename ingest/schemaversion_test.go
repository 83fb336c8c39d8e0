package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/testsupport"
)

// Issue 24 item 3: every ingest instance stamps the stored event (the
// stream, the source of truth) with the version of its type's schema that
// validated it, and nothing for a type with no schema.
func TestStoredEventSaysItsSchemaVersion(t *testing.T) {
	ns := testsupport.StartNATS(t)
	urls := []string{runIngest(t, ns), runIngest(t, ns)}
	ctx := context.Background()
	cat, err := catalog.Open(ctx, ns.JetStream(t), schemas.StreamOptions{})
	require.NoError(t, err)
	// Version 1 takes plan as a string; version 2 also as a number.
	for _, plan := range []string{`"string"`, `["string","number"]`} {
		_, _, err = cat.Push(ctx, "signup.completed", []byte(`{"allOf":[{"$ref":"envelope.json"}],
			"properties":{"metadata":{"type":"object","properties":{"plan":{"type":`+plan+`}}}}}`), "", false)
		require.NoError(t, err)
	}
	stream, err := ns.JetStream(t).Stream(ctx, schemas.StreamName)
	require.NoError(t, err)
	stored := func(seq uint64) map[string]any {
		msg, err := stream.GetMsg(ctx, seq)
		require.NoError(t, err)
		var ev map[string]any
		require.NoError(t, json.Unmarshal(msg.Data, &ev), "%s", msg.Data)
		return ev
	}

	tests := []struct {
		eventType, metadata string
		version             int // 0: none
	}{
		{"signup.completed", `{"plan":5}`, 2}, // refused by version 1
		{"page_view", `{"path":"/"}`, 1},      // embedded: version 1
		{"plain.click", `{"x":1}`, 0},         // no schema
	}
	for i, u := range urls {
		t.Run(fmt.Sprintf("instance %d", i), func(t *testing.T) {
			// Until this instance has read version 2 it stores the event
			// without a schema (no version yet: the envelope alone), with
			// version 1's number, or refuses it (version 1: plan is not a
			// string); wait until it stamps version 2.
			try := 0
			require.Eventually(t, func() bool {
				try++
				first := fmt.Sprintf(`{"id":"sv-%d-try-%d","eventType":"signup.completed","userId":"u","timestamp":1700000000000,"metadata":{"plan":5}}`, i, try)
				resp, err := http.Post(u+"/events", "application/json", strings.NewReader(first))
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				var out struct {
					Seq uint64 `json:"seq"`
				}
				if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&out) != nil || out.Seq == 0 {
					return false
				}
				msg, err := stream.GetMsg(ctx, out.Seq)
				if err != nil {
					return false
				}
				var ev struct {
					SchemaVersion int `json:"schemaVersion"`
				}
				return json.Unmarshal(msg.Data, &ev) == nil && ev.SchemaVersion == 2
			}, 3*time.Minute, 20*time.Millisecond, "%s never validated with version 2", u)

			// A batch, through the path gRPC Publish and inbound webhooks take too.
			var batch []string
			for k, tt := range tests {
				batch = append(batch, fmt.Sprintf(`{"id":"sv-%d-%d","eventType":%q,"userId":"u","timestamp":1700000000000,"metadata":%s}`,
					i, k, tt.eventType, tt.metadata))
			}
			resp, err := http.Post(u+"/events", "application/json", strings.NewReader("["+strings.Join(batch, ",")+"]"))
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusAccepted, resp.StatusCode)
			var out struct {
				Results []struct {
					Seq uint64 `json:"seq"`
				} `json:"results"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
			require.Len(t, out.Results, len(tests))
			for k, tt := range tests {
				ev := stored(out.Results[k].Seq)
				require.Equal(t, tt.eventType, ev["eventType"])
				if tt.version == 0 {
					require.NotContains(t, ev, "schemaVersion", "%s has no schema", tt.eventType)
					continue
				}
				require.EqualValues(t, tt.version, ev["schemaVersion"], tt.eventType)
			}
		})
	}
}
