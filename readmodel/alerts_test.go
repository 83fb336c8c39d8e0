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
		{"retrying", readmodel.AlertFilter{Status: readmodel.DeliveryRetrying}, []string{"a2"}},
		{"sent on every channel", readmodel.AlertFilter{Status: readmodel.DeliverySent}, []string{"a0"}},
		{"sent, a page at a time", readmodel.AlertFilter{Status: readmodel.DeliverySent, Limit: 1}, []string{}}, // a5, dropped: no deliveries recorded yet
		{"dead on slack", readmodel.AlertFilter{Status: readmodel.DeliveryDead, Channel: "slack"}, []string{"a1"}},
		{"dead on email", readmodel.AlertFilter{Status: readmodel.DeliveryDead, Channel: "email"}, []string{}},
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

func TestAlertsPageWithCursorAcrossTies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := readmodel.NewAlerts(testsupport.StartMongo(t).Database(t))
	require.NoError(t, store.EnsureIndexes(ctx))
	alerts, _ := store.Collections()
	// 7 alerts, several decided in the same millisecond: paging by time
	// alone would drop or repeat some.
	for i, at := range []int64{1000, 1000, 1000, 999, 999, 998, 1000} {
		id := fmt.Sprintf("a%d", i)
		_, err := alerts.InsertOne(ctx, readmodel.Alert{ID: id, Rule: "r", Kind: "each", Channels: []string{"log"}, DecidedAt: at})
		require.NoError(t, err)
	}
	want := []string{"a6", "a2", "a1", "a0", "a4", "a3", "a5"}

	var got []string
	var after *readmodel.AlertCursor
	for page := 0; ; page++ {
		require.Less(t, page, 10)
		list, next, err := store.Find(ctx, readmodel.AlertFilter{Limit: 2, After: after})
		require.NoError(t, err)
		for _, a := range list {
			got = append(got, a.ID)
		}
		if next == nil {
			require.Len(t, list, 1, "the last page")
			break
		}
		parsed, err := readmodel.ParseAlertCursor(next.String())
		require.NoError(t, err)
		require.Equal(t, *next, parsed)
		after = &parsed
	}
	require.Equal(t, want, got)

	for _, bad := range []string{"", "!!", "MTAw", "eC55"} { // "", not base64, "100", "x.y"
		_, err := readmodel.ParseAlertCursor(bad)
		require.ErrorIs(t, err, readmodel.ErrBadCursor, bad)
	}
}

func TestAlertViewShape(t *testing.T) {
	t.Parallel()
	a := readmodel.Alert{
		ID: "x", Rule: "big-order", Kind: "each", Message: "m", Channels: []string{"slack", "email"},
		EventID: "e1", EventType: "order.created", EventSeq: 42, EventTimestamp: 7, DecidedAt: 9,
		Deliveries: []readmodel.Delivery{{Channel: "slack", Status: readmodel.DeliveryDead, Attempts: 5, LastError: "slack webhook answered 500"}},
	}
	a.Status = readmodel.OverallStatus(a.Deliveries)
	body, err := json.Marshal(a.View())
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"x","rule":"big-order","kind":"each","message":"m","status":"dead","dedupeKey":"",
		"eventId":"e1","eventType":"order.created","seq":42,"eventTimestamp":7,"createdAt":9,
		"channels":[{"name":"slack","status":"dead","attempts":5,"lastError":"slack webhook answered 500"},
		            {"name":"email","status":"pending","attempts":0}]}`, string(body))
	require.Equal(t, readmodel.DeliveryPending, readmodel.Alert{Channels: []string{"log"}}.View().Status)
}
