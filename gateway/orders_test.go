package gateway_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

type orderView struct {
	ID, Status, Currency, CustomerEmail, CreatedAt string
	Amount                                         float64
	Seq                                            uint64
}

// TestListOrders: GET /orders lists the orders read model, oldest first,
// with each order's current status, filtered by ?status=; bad parameters
// are problem+json naming the field.
func TestListOrders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testsupport.StartMongo(t).Database(t)
	ev := func(seq uint64, typ, meta string) schemas.Event {
		return schemas.Event{EventType: typ, Seq: seq, Metadata: json.RawMessage(meta)}
	}
	require.NoError(t, readmodel.NewOrders(db).Apply(ctx, []schemas.Event{
		ev(1, "order.created", `{"id":"o1","status":"created","amount":5,"currency":"EUR","customerEmail":"a@x","createdAt":"2026-01-01T00:00:00Z"}`),
		ev(2, "order.created", `{"id":"o2","status":"created","amount":7.5,"currency":"USD","customerEmail":"b@x","createdAt":"2026-01-01T00:00:01Z"}`),
		ev(3, "order.canceled", `{"id":"o1","status":"canceled","reason":"r","createdAt":"2026-01-01T00:00:02Z"}`),
	}))
	cfg, err := gateway.LoadConfig(map[string]string{})
	require.NoError(t, err)
	cfg.ReadKeys = []string{"k"}
	svc, err := gateway.New(cfg, gateway.Deps{Mongo: db, Redis: testsupport.StartRedis(t).Client(t),
		Metrics: prometheus.NewRegistry(), Log: testsupport.Logger(t)})
	require.NoError(t, err)
	base := serve(t, svc)

	list := func(query string) []orderView {
		t.Helper()
		r := get(t, base+"/orders"+query, "X-API-Key", "k")
		require.Equal(t, 200, r.status, "%s", r.body)
		return decode[[]orderView](t, r)
	}
	require.Equal(t, []orderView{
		{ID: "o1", Status: "canceled", Currency: "EUR", CustomerEmail: "a@x", CreatedAt: "2026-01-01T00:00:00Z", Amount: 5, Seq: 3},
		{ID: "o2", Status: "created", Currency: "USD", CustomerEmail: "b@x", CreatedAt: "2026-01-01T00:00:01Z", Amount: 7.5, Seq: 2},
	}, list(""))
	require.Equal(t, []string{"o2"}, orderIDs(list("?status=created")))
	require.Equal(t, []string{"o1"}, orderIDs(list("?status=canceled")))
	require.Equal(t, []string{}, orderIDs(list("?status=shipped")))
	require.Len(t, list("?status="), 2, "an empty status is no filter")

	requireProblem(t, get(t, base+"/orders"), 401)
	for query, field := range map[string]string{
		"?status=Created":    "status",
		"?status=a&status=b": "status",
		"?limit=5":           "limit",
		"?status=x%20y":      "status",
	} {
		p := requireProblem(t, get(t, base+"/orders"+query, "X-API-Key", "k"), 400)
		require.Len(t, p.Errors, 1, query)
		require.Equal(t, field, p.Errors[0].Field, query)
	}
}

func orderIDs(os []orderView) []string {
	out := []string{}
	for _, o := range os {
		out = append(out, o.ID)
	}
	return out
}
