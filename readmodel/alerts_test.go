package readmodel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/testsupport"
)

func TestAlertsListWithDeliveriesAndFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testsupport.StartMongo(t).Database(t)
	store := readmodel.NewAlerts(db)
	require.NoError(t, store.EnsureIndexes(ctx))
	require.NoError(t, store.EnsureIndexes(ctx), "ensuring twice is a no-op (FerretDB panics on re-creating compound indexes)")

	alerts, deliveries := store.Collections()
	for i := range 6 {
		rule := []string{"big-order", "payment-failed-burst"}[i%2]
		_, err := alerts.InsertOne(ctx, readmodel.Alert{
			ID: fmt.Sprintf("a%d", i), Rule: rule, Kind: "each", Message: "m", Channels: []string{"slack", "email"},
			EventID: fmt.Sprintf("e%d", i), DecidedAt: int64(1000 + i),
		})
		require.NoError(t, err)
	}
	// a0: both sent; a1: slack dead, email sent; a2: slack retrying; others: no delivery docs yet.
	for _, d := range []readmodel.Delivery{
		{AlertID: "a0", Channel: "slack", Status: readmodel.DeliverySent, Attempts: 1},
		{AlertID: "a0", Channel: "email", Status: readmodel.DeliverySent, Attempts: 1},
		{AlertID: "a1", Channel: "slack", Status: readmodel.DeliveryDead, Attempts: 5, LastError: "slack: 500"},
		{AlertID: "a1", Channel: "email", Status: readmodel.DeliverySent, Attempts: 1},
		{AlertID: "a2", Channel: "slack", Status: readmodel.DeliveryRetrying, Attempts: 2},
	} {
		d.ID = readmodel.DeliveryID(d.AlertID, d.Channel)
		_, err := deliveries.InsertOne(ctx, d)
		require.NoError(t, err)
	}

	ids := func(as []readmodel.Alert) []string {
		out := []string{}
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		filter readmodel.AlertFilter
		want   []string
	}{
		{"newest first", readmodel.AlertFilter{}, []string{"a5", "a4", "a3", "a2", "a1", "a0"}},
		{"limit", readmodel.AlertFilter{Limit: 2}, []string{"a5", "a4"}},
		{"before", readmodel.AlertFilter{Before: 1003}, []string{"a2", "a1", "a0"}},
		{"rule", readmodel.AlertFilter{Rule: "big-order"}, []string{"a4", "a2", "a0"}},
		{"dead", readmodel.AlertFilter{Status: readmodel.DeliveryDead}, []string{"a1"}},
		{"sent on email", readmodel.AlertFilter{Status: readmodel.DeliverySent, Channel: "email"}, []string{"a1", "a0"}},
		{"channel", readmodel.AlertFilter{Channel: "slack"}, []string{"a5", "a4", "a3", "a2", "a1", "a0"}},
		{"no match", readmodel.AlertFilter{Channel: "pager"}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := store.List(ctx, tc.filter)
			require.NoError(t, err)
			require.Equal(t, tc.want, ids(got))
		})
	}

	all, err := store.List(ctx, readmodel.AlertFilter{})
	require.NoError(t, err)
	status := map[string]string{}
	for _, a := range all {
		status[a.ID] = a.Status
		require.Len(t, a.Deliveries, 2, "one delivery per channel, in channel order")
		require.Equal(t, "slack", a.Deliveries[0].Channel)
	}
	require.Equal(t, map[string]string{
		"a0": readmodel.DeliverySent, "a1": readmodel.DeliveryDead, "a2": readmodel.DeliveryRetrying,
		"a3": readmodel.DeliveryPending, "a4": readmodel.DeliveryPending, "a5": readmodel.DeliveryPending,
	}, status)

	one, err := store.Get(ctx, "a1")
	require.NoError(t, err)
	require.Equal(t, "slack: 500", one.Deliveries[0].LastError)
	body, err := json.Marshal(one)
	require.NoError(t, err)
	require.Contains(t, string(body), `"status":"dead"`)
	require.Contains(t, string(body), `"deliveries":[{"channel":"slack","status":"dead"`)

	_, err = store.Get(ctx, "nope")
	require.ErrorIs(t, err, readmodel.ErrAlertNotFound)
}
