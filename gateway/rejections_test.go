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
// key (the bodies may hold personal data), and names a bad parameter.
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

	for _, tc := range []struct{ query, param string }{
		{"limit=0", "limit"}, {"limit=x", "limit"}, {"since=yesterday", "since"}, {"type=a%20b", "type"},
		{"cursor=-1", "cursor"}, {"colour=red", "colour"}, {"type=a&type=b", "type"},
	} {
		r := get(t, url+"/rejections?"+tc.query, "X-API-Key", "adm-1")
		p := requireProblem(t, r, http.StatusBadRequest)
		require.Contains(t, string(r.body), `"field":"`+tc.param+`"`, "%s: %+v", tc.query, p)
	}
}
