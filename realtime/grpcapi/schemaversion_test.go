package grpcapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
	"github.com/kilnhq/kiln/realtime/grpcapi"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// Issue 24 item 3: Subscribe gives each event the schema version stored
// with it (schema_version, an optional field: unset for a type with no
// schema), from the catch-up replay and from the live feed alike.
func TestSubscribeCarriesSchemaVersion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	js := testsupport.StartNATS(t).JetStream(t)
	_, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	require.NoError(t, err)
	publish := func(id string, version int) {
		body := fmt.Sprintf(`{"id":%q,"eventType":"sv.test","userId":"u","timestamp":1,"receivedAt":1}`, id)
		if version != 0 {
			body = fmt.Sprintf(`{"id":%q,"eventType":"sv.test","userId":"u","timestamp":1,"receivedAt":1,"schemaVersion":%d}`, id, version)
		}
		_, err := js.Publish(ctx, schemas.Subject("sv.test"), []byte(body))
		require.NoError(t, err)
	}
	tests := []struct {
		id      string
		version int // 0: unset
	}{
		{"stored-v3", 3}, {"stored-none", 0}, // replayed by the catch-up
		{"live-v1", 1}, {"live-none", 0}, // from the live feed
	}
	publish(tests[0].id, tests[0].version)
	publish(tests[1].id, tests[1].version)

	client := kilnv1.NewEventServiceClient(serveGRPC(ctx, t, js, grpcapi.Defaults()))
	sub, err := client.Subscribe(ctx, &kilnv1.SubscribeRequest{Types: []string{"sv.test"}, Resume: true})
	require.NoError(t, err)
	for i, tt := range tests {
		if i >= 2 {
			publish(tt.id, tt.version)
		}
		ev, err := sub.Recv()
		require.NoError(t, err)
		require.Equal(t, tt.id, ev.GetId())
		if tt.version == 0 {
			require.Nil(t, ev.SchemaVersion, "%s: no schema, no schema_version", tt.id)
			continue
		}
		require.NotNil(t, ev.SchemaVersion, tt.id)
		require.EqualValues(t, tt.version, ev.GetSchemaVersion(), tt.id)
	}
}
