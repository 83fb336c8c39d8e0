package readmodel_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

func orderEvent(seq uint64, typ, meta string) schemas.Event {
	return schemas.Event{ID: typ + string(rune('a'+seq)), EventType: typ, UserID: "u", Timestamp: 1, Seq: seq,
		Metadata: json.RawMessage(meta)}
}

func TestOrdersFollowStatusChangesIdempotently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := readmodel.NewOrders(testsupport.StartMongo(t).Database(t))
	created := orderEvent(1, "order.created",
		`{"id":"o1","status":"created","amount":12.5,"currency":"EUR","customerEmail":"a@b.c","notes":"n","createdAt":"2026-01-01T00:00:00Z"}`)
	other := orderEvent(2, "order.created",
		`{"id":"o2","status":"created","amount":1,"currency":"EUR","customerEmail":"x@b.c","createdAt":"2026-01-02T00:00:00Z"}`)
	canceled := orderEvent(3, "order.canceled", `{"id":"o1","status":"canceled","reason":"r","createdAt":"2026-01-03T00:00:00Z"}`)
	noise := []schemas.Event{
		orderEvent(4, "page_view", `{"id":"o1","status":"shipped"}`),
		orderEvent(5, "order.chat", `{"text":"hi"}`),
	}
	require.NoError(t, o.Apply(ctx, []schemas.Event{created, other}))
	require.NoError(t, o.Apply(ctx, append([]schemas.Event{canceled}, noise...)))
	require.NoError(t, o.Apply(ctx, []schemas.Event{created})) // redelivery after the cancel

	all, err := o.List(ctx, "")
	require.NoError(t, err)
	require.Equal(t, []readmodel.Order{
		{ID: "o1", CustomerEmail: "a@b.c", Amount: 12.5, Currency: "EUR", Status: "canceled", Notes: "n",
			CreatedAt: "2026-01-01T00:00:00Z", Seq: 3},
		{ID: "o2", CustomerEmail: "x@b.c", Amount: 1, Currency: "EUR", Status: "created",
			CreatedAt: "2026-01-02T00:00:00Z", Seq: 2},
	}, all)
	open, err := o.List(ctx, "created")
	require.NoError(t, err)
	require.Len(t, open, 1)
	require.Equal(t, "o2", open[0].ID)
	got, found, err := o.Get(ctx, "o1")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "canceled", got.Status)
	_, found, err = o.Get(ctx, "nope")
	require.NoError(t, err)
	require.False(t, found)
}
