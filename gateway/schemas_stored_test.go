package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	mongoevent "go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// TestSchemaOfANewTypeReadsNoHistory: the first schema of a type the
// counters have never counted is checked against no stored events without
// a history read. Before, every such push looked for the type's events in
// the whole history, which FerretDB scans: after a million events a full
// make bench timed out registering its types. A type the counters have
// counted is still checked against its stored events.
func TestSchemaOfANewTypeReadsNoHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := testsupport.StartMongo(t)
	var finds atomic.Int64
	client := m.ClientWith(t, options.Client().SetMonitor(&mongoevent.CommandMonitor{
		Started: func(_ context.Context, e *mongoevent.CommandStartedEvent) {
			if e.CommandName == "find" {
				finds.Add(1)
			}
		},
	}))
	db := client.Database(testsupport.UniqueName(t))
	rdb := testsupport.StartRedis(t).Client(t)
	js := testsupport.StartNATS(t).JetStream(t)
	cfg, err := gateway.LoadConfig(map[string]string{})
	require.NoError(t, err)
	svc, err := gateway.New(cfg, gateway.Deps{Mongo: db, Redis: rdb, JetStream: js, Log: testsupport.Logger(t)})
	require.NoError(t, err)
	url := serve(t, svc)

	// Stored and counted as the projector does it: two signups, one
	// without a plan, counted exactly up to their sequence.
	stored := []schemas.Event{
		{ID: "with-plan", EventType: "signup.completed", UserID: "u", Timestamp: time.Now().UnixMilli(), ReceivedAt: 1, Seq: 1, Metadata: json.RawMessage(`{"plan":"pro"}`)},
		{ID: "no-plan", EventType: "signup.completed", UserID: "u", Timestamp: time.Now().UnixMilli(), ReceivedAt: 2, Seq: 2, Metadata: json.RawMessage(`{}`)},
	}
	history := readmodel.NewHistory(db, readmodel.DefaultCollections())
	require.NoError(t, history.EnsureIndexes(ctx))
	_, err = history.Apply(ctx, stored)
	require.NoError(t, err)
	counters := readmodel.NewCounters(rdb, readmodel.CountersOptions{})
	_, err = counters.Apply(ctx, stored, time.Now())
	require.NoError(t, err)
	_, err = counters.SetLiveCheckpoint(ctx, 2)
	require.NoError(t, err)

	strict := `{"$schema":"https://json-schema.org/draft/2020-12/schema","allOf":[{"$ref":"envelope.json"}],
 "properties":{"metadata":{"type":"object","required":["plan"],"properties":{"plan":{"type":"string"}}}}}`
	before := finds.Load()
	status, body := call(t, http.MethodPost, url+"/schemas/trial.started", "", strict)
	require.Equal(t, http.StatusCreated, status, body)
	require.Contains(t, body, `"checked":0`)
	require.Equal(t, before, finds.Load(), "a new type's schema read the history")

	status, body = call(t, http.MethodPost, url+"/schemas/signup.completed", "", strict)
	require.Equal(t, http.StatusConflict, status, body)
	require.Contains(t, body, `"no-plan"`)
	require.Greater(t, finds.Load(), before, "a counted type's stored events come from the history")
}
