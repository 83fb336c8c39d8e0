package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/rejections"
	"github.com/kilnhq/kiln/testsupport"
)

// GET /rejections lists the REJECTIONS stream newest first, needs an admin
// key (the bodies may hold personal data), and names a bad parameter;
// GET /rejections/summary counts it per type and field, under the same key.
func TestRejectionsRoute(t *testing.T) {
	cfg, err := gateway.LoadConfig(map[string]string{"KILN_ADMIN_KEYS": "adm-1", "KILN_READ_KEYS": "read-1"})
	require.NoError(t, err)
	db := testsupport.StartMongo(t).Database(t)
	rdb := testsupport.StartRedis(t).Client(t)
	js := testsupport.StartNATS(t).JetStream(t)
	svc, err := gateway.New(cfg, gateway.Deps{Mongo: db, Redis: rdb, JetStream: js, Log: testsupport.Logger(t)})
	require.NoError(t, err)
	url := serve(t, svc)

	// Before ingest made the stream: an empty list.
	status, body := call(t, http.MethodGet, url+"/rejections", "adm-1", "")
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `[]`, body)

	ctx := context.Background()
	_, err = rejections.Ensure(ctx, js, rejections.Options{}, 1)
	require.NoError(t, err)
	now := time.Now().UTC()
	for i, typ := range []string{"order.created", "page_view", "order.created"} {
		r := rejections.Record{EventType: typ, ID: "r" + string(rune('0'+i)), Outcome: rejections.Quarantined, Time: now,
			Reasons: []schemas.FieldError{{Field: "metadata.amount", Message: "must be >= 0"}},
			Body:    []byte(`{"eventType":"` + typ + `","metadata":{"amount":-1}}`)}
		m, err := r.Msg()
		require.NoError(t, err)
		_, err = js.PublishMsg(ctx, m)
		require.NoError(t, err)
	}

	status, _ = call(t, http.MethodGet, url+"/rejections", "read-1", "")
	require.Equal(t, http.StatusUnauthorized, status, "a read key is not an admin key")
	status, body = call(t, http.MethodGet, url+"/rejections?type=order.created&field=metadata&limit=1", "adm-1", "")
	require.Equal(t, http.StatusOK, status, body)
	var page []map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &page))
	require.Len(t, page, 1)
	require.Equal(t, "r2", page[0]["id"], "newest first")
	require.Equal(t, "quarantined", page[0]["outcome"])
	require.Equal(t, map[string]any{"eventType": "order.created", "metadata": map[string]any{"amount": -1.0}}, page[0]["body"])

	// The summary: per type and field, the newest example of each field.
	status, _ = call(t, http.MethodGet, url+"/rejections/summary", "read-1", "")
	require.Equal(t, http.StatusUnauthorized, status, "a read key is not an admin key")
	status, body = call(t, http.MethodGet, url+"/rejections/summary?since=15m", "adm-1", "")
	require.Equal(t, http.StatusOK, status, body)
	var sum rejections.Summary
	require.NoError(t, json.Unmarshal([]byte(body), &sum))
	require.Equal(t, 3, sum.Total)
	require.Len(t, sum.Types, 2)
	require.Equal(t, "order.created", sum.Types[0].Type, "most refused first")
	require.Equal(t, 2, sum.Types[0].Quarantined)
	require.Equal(t, 2, sum.Types[0].LastMinute)
	require.Equal(t, "metadata.amount", sum.Types[0].Fields[0].Field)
	require.Equal(t, 2, sum.Types[0].Fields[0].Count)
	require.Equal(t, "r2", sum.Types[0].Fields[0].Example.ID)
	require.Equal(t, "must be >= 0", sum.Types[0].Fields[0].Example.Message)
	status, body = call(t, http.MethodGet, url+"/rejections/summary?type=page_view&since="+now.Add(-time.Minute).Format(time.RFC3339), "adm-1", "")
	require.Equal(t, http.StatusOK, status, body)
	require.NoError(t, json.Unmarshal([]byte(body), &sum))
	require.Equal(t, 1, sum.Total)
	require.Equal(t, "page_view", sum.Types[0].Type)
	for _, tc := range []struct{ query, param string }{
		{"since=0s", "since"}, {"since=yesterday", "since"}, {"since=9000h", "since"}, {"top=0", "top"}, {"top=21", "top"},
		{"type=a%20b", "type"}, {"colour=red", "colour"}, {"top=1&top=2", "top"},
	} {
		r := get(t, url+"/rejections/summary?"+tc.query, "X-API-Key", "adm-1")
		p := requireProblem(t, r, http.StatusBadRequest)
		require.Contains(t, string(r.body), `"field":"`+tc.param+`"`, "%s: %+v", tc.query, p)
	}

	for _, tc := range []struct{ query, param string }{
		{"limit=0", "limit"}, {"limit=x", "limit"}, {"since=yesterday", "since"}, {"type=a%20b", "type"},
		{"cursor=-1", "cursor"}, {"colour=red", "colour"}, {"type=a&type=b", "type"},
	} {
		r := get(t, url+"/rejections?"+tc.query, "X-API-Key", "adm-1")
		p := requireProblem(t, r, http.StatusBadRequest)
		require.Contains(t, string(r.body), `"field":"`+tc.param+`"`, "%s: %+v", tc.query, p)
	}

	// Both routes read their query alike: an unknown name is refused with
	// the route's own parameters; an empty value of any name and
	// access_token (auth) are passed over.
	for path, params := range map[string]string{"/rejections": "type, field, since, limit, cursor", "/rejections/summary": "since, type, top"} {
		r := get(t, url+path+"?colour=red", "X-API-Key", "adm-1")
		requireProblem(t, r, http.StatusBadRequest)
		require.Contains(t, string(r.body), "is not a parameter of GET "+path+" ("+params+")")
		status, body = call(t, http.MethodGet, url+path+"?colour=&type=&access_token=adm-1", "adm-1", "")
		require.Equal(t, http.StatusOK, status, body)
	}
}
