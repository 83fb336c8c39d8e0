package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// GET /schemas says, per registered type, what the read models know: the
// newest stored event in the recent cache (lastSeen), the last minute's
// and all-time counts. Without Redis it still lists the registry.
func TestSchemasListShowsActivity(t *testing.T) {
	t.Parallel()
	cfg, err := gateway.LoadConfig(map[string]string{})
	require.NoError(t, err)
	db := testsupport.StartMongo(t).Database(t)
	rdb := testsupport.StartRedis(t).Client(t)
	js := testsupport.StartNATS(t).JetStream(t)
	svc, err := gateway.New(cfg, gateway.Deps{Mongo: db, Redis: rdb, JetStream: js, Log: testsupport.Logger(t)})
	require.NoError(t, err)
	url := serve(t, svc)

	ctx := context.Background()
	now := time.Now()
	evs := []schemas.Event{
		{ID: "o1", EventType: "order.created", UserID: "u", Timestamp: now.Add(-3 * time.Hour).UnixMilli(), ReceivedAt: now.Add(-3 * time.Hour).UnixMilli(), Seq: 1, Metadata: json.RawMessage(`{}`)},
		{ID: "o2", EventType: "order.created", UserID: "u", Timestamp: now.Add(-10 * time.Second).UnixMilli(), ReceivedAt: now.Add(-9 * time.Second).UnixMilli(), Seq: 2, Metadata: json.RawMessage(`{}`)},
		{ID: "x1", EventType: "unregistered.type", UserID: "u", Timestamp: now.UnixMilli(), ReceivedAt: now.UnixMilli(), Seq: 3},
	}
	counters := readmodel.NewCounters(rdb, readmodel.CountersOptions{})
	_, err = counters.Apply(ctx, evs, now)
	require.NoError(t, err)
	require.NoError(t, counters.SetCheckpoint(ctx, 3))
	recent := readmodel.NewRecent(rdb, readmodel.RecentOptions{})
	epoch, _, err := recent.Start(ctx, now)
	require.NoError(t, err)
	_, err = recent.Apply(ctx, evs, now)
	require.NoError(t, err)
	ok, err := recent.MarkComplete(ctx, epoch)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, recent.SetPositions(ctx, 3, 3))

	type entry struct {
		Type         string `json:"type"`
		Latest       int    `json:"latest"`
		LastSeen     int64  `json:"lastSeen"`
		LastReceived int64  `json:"lastReceived"`
		LastMinute   *int64 `json:"lastMinute"`
		Stored       *int64 `json:"stored"`
	}
	list := func() map[string]entry {
		status, body := call(t, http.MethodGet, url+"/schemas", "", "")
		require.Equal(t, http.StatusOK, status, body)
		var l []entry
		require.NoError(t, json.Unmarshal([]byte(body), &l))
		out := map[string]entry{}
		for _, e := range l {
			out[e.Type] = e
		}
		return out
	}
	// Read models slower than their budget leave the fields out: wait for
	// them, on a loaded machine too.
	var got map[string]entry
	require.Eventually(t, func() bool {
		got = list()
		return got["order.created"].Stored != nil
	}, 2*time.Minute, 100*time.Millisecond, "GET /schemas shows the read models' activity")
	require.NotContains(t, got, "unregistered.type", "the registry's types only")
	oc := got["order.created"]
	require.Equal(t, evs[1].Timestamp, oc.LastSeen, "the newest stored event")
	require.Equal(t, evs[1].ReceivedAt, oc.LastReceived)
	require.NotNil(t, oc.Stored)
	require.EqualValues(t, 2, *oc.Stored)
	require.EqualValues(t, 1, *oc.LastMinute)
	pv := got["page_view"]
	require.Zero(t, pv.LastSeen, "none stored")
	require.NotNil(t, pv.Stored)
	require.Zero(t, *pv.Stored)

	// A gateway whose Redis (and MongoDB) are down still lists the registry.
	deps := deadDeps(t)
	deps.JetStream = js
	dead, err := gateway.New(cfg, deps)
	require.NoError(t, err)
	status, body := call(t, http.MethodGet, serve(t, dead)+"/schemas", "", "")
	require.Equal(t, http.StatusOK, status, body)
	var l []entry
	require.NoError(t, json.Unmarshal([]byte(body), &l))
	require.NotEmpty(t, l)
	for _, e := range l {
		require.Nil(t, e.Stored, e.Type)
		require.Zero(t, e.LastSeen, e.Type)
	}
}
