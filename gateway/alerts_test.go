package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/testsupport"
)

// alertsBase is 2026-01-01T00:00:00Z in Unix ms.
const alertsBase = 1767225600000

// alertsGateway serves a gateway (with read key "k") over a FerretDB
// holding 7 alerts: a0…a6, decided at alertsBase+i ms except a5 and a6,
// which tie with a4. Rules alternate big-order / burst; a0 sent on both
// channels, a1 dead on the log, a2 retrying on Slack, the rest pending.
func alertsGateway(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	db := testsupport.StartMongo(t).Database(t)
	store := readmodel.NewAlerts(db)
	require.NoError(t, store.EnsureIndexes(ctx))
	alerts, deliveries := store.Collections()
	for i := range 7 {
		a := readmodel.Alert{
			ID: fmt.Sprintf("a%d", i), Rule: []string{"big-order", "burst"}[i%2], Kind: "each",
			Message: fmt.Sprintf("alert %d", i), Channels: []string{"slack", "email"},
			EventID: fmt.Sprintf("e%d", i), EventType: "order.created", EventSeq: int64(10 + i), EventTimestamp: 500,
			UserID: "u1", DecidedAt: alertsBase + int64(min(i, 4)),
		}
		if a.Rule == "burst" {
			a.Kind, a.Group, a.WindowStart, a.WindowEnd, a.Count, a.Channels = "threshold", "u1", 0, 60_000, 6, []string{"log"}
		}
		_, err := alerts.InsertOne(ctx, a)
		require.NoError(t, err)
	}
	// The notifier creates every delivery pending right after the alert.
	for _, d := range []readmodel.Delivery{
		{AlertID: "a3", Channel: "log", Status: readmodel.DeliveryPending},
		{AlertID: "a4", Channel: "slack", Status: readmodel.DeliveryPending},
		{AlertID: "a4", Channel: "email", Status: readmodel.DeliveryPending},
		{AlertID: "a5", Channel: "log", Status: readmodel.DeliveryPending},
		{AlertID: "a6", Channel: "slack", Status: readmodel.DeliveryPending},
		{AlertID: "a6", Channel: "email", Status: readmodel.DeliveryPending},
		{AlertID: "a2", Channel: "email", Status: readmodel.DeliveryPending},
		{AlertID: "a0", Channel: "slack", Status: readmodel.DeliverySent, Attempts: 1, SentAt: alertsBase + 100},
		{AlertID: "a0", Channel: "email", Status: readmodel.DeliverySent, Attempts: 1, SentAt: alertsBase + 101},
		{AlertID: "a1", Channel: "log", Status: readmodel.DeliveryDead, Attempts: 5, LastError: "boom"},
		{AlertID: "a2", Channel: "slack", Status: readmodel.DeliveryRetrying, Attempts: 2, LastError: "slack webhook answered 500", NextAt: 2000},
	} {
		d.ID = readmodel.DeliveryID(d.AlertID, d.Channel)
		_, err := deliveries.InsertOne(ctx, d)
		require.NoError(t, err)
	}
	cfg, err := gateway.LoadConfig(map[string]string{})
	require.NoError(t, err)
	cfg.ReadKeys = []string{"k"}
	svc, err := gateway.New(cfg, gateway.Deps{Mongo: db, Redis: testsupport.StartRedis(t).Client(t),
		Metrics: prometheus.NewRegistry(), Log: testsupport.Logger(t)})
	require.NoError(t, err)
	return serve(t, svc)
}

func alertIDs(as []readmodel.AlertView) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

func TestListAlerts(t *testing.T) {
	t.Parallel()
	base := alertsGateway(t)
	list := func(t *testing.T, query string) (response, []readmodel.AlertView) {
		t.Helper()
		r := get(t, base+"/alerts?"+query, "X-API-Key", "k")
		require.Equal(t, 200, r.status, "%s", r.body)
		return r, decode[[]readmodel.AlertView](t, r)
	}

	t.Run("newest first with channels", func(t *testing.T) {
		t.Parallel()
		r, got := list(t, "")
		require.Equal(t, []string{"a6", "a5", "a4", "a3", "a2", "a1", "a0"}, alertIDs(got))
		require.Empty(t, r.header.Get("X-Next-Cursor"))
		require.JSONEq(t, `{"id":"a2","rule":"big-order","kind":"each","message":"alert 2","status":"retrying","dedupeKey":"",
			"eventId":"e2","eventType":"order.created","seq":12,"eventTimestamp":500,"userId":"u1","createdAt":1767225600002,
			"channels":[{"name":"slack","status":"retrying","attempts":2,"lastError":"slack webhook answered 500","nextAt":2000},
			            {"name":"email","status":"pending","attempts":0}]}`, string(mustJSON(t, got[4])))
		require.Equal(t, readmodel.ChannelView{Name: "slack", Status: "sent", Attempts: 1, SentAt: alertsBase + 100}, got[6].Channels[0])
		require.Equal(t, "sent", got[6].Status)
		require.Equal(t, "threshold", got[5].Kind)
		require.Equal(t, 6, got[5].Count)
	})
	t.Run("filters", func(t *testing.T) {
		t.Parallel()
		for q, want := range map[string][]string{
			"rule=burst":                      {"a5", "a3", "a1"},
			"channel=log":                     {"a5", "a3", "a1"},
			"status=dead":                     {"a1"},
			"status=sent&channel=email":       {"a0"},
			"status=pending&channel=slack":    {"a6", "a4"},
			"status=retrying":                 {"a2"},
			"status=sent":                     {"a0"},
			"status=dead&channel=slack":       {},
			"rule=big-order&status=sent":      {"a0"},
			"before=1767225600002":            {"a1", "a0"},
			"before=2026-01-01T00:00:00.003Z": {"a2", "a1", "a0"},
			"rule=nope":                       {},
			"channel=pager":                   {},
		} {
			_, got := list(t, q)
			require.Equal(t, want, alertIDs(got), q)
		}
	})
	t.Run("pages follow the cursor across ties, keeping the filters", func(t *testing.T) {
		t.Parallel()
		var ids []string
		next := base + "/alerts?limit=2&channel=slack"
		for pages := 0; next != ""; pages++ {
			require.Less(t, pages, 5)
			r := get(t, next, "Authorization", "Bearer k")
			require.Equal(t, 200, r.status, "%s", r.body)
			ids = append(ids, alertIDs(decode[[]readmodel.AlertView](t, r))...)
			next = ""
			if cur := r.header.Get("X-Next-Cursor"); cur != "" {
				link := r.header.Get("Link")
				require.True(t, strings.HasPrefix(link, "</alerts?") && strings.HasSuffix(link, `>; rel="next"`), link)
				u, err := url.Parse(strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`))
				require.NoError(t, err)
				require.Equal(t, cur, u.Query().Get("cursor"))
				require.Equal(t, "slack", u.Query().Get("channel"))
				require.Equal(t, "2", u.Query().Get("limit"))
				next = base + u.String()
			}
		}
		require.Equal(t, []string{"a6", "a4", "a2", "a0"}, ids)
	})
	t.Run("limit 1000 and access_token", func(t *testing.T) {
		t.Parallel()
		r := get(t, base+"/alerts?limit=1000&access_token=k")
		require.Equal(t, 200, r.status, "%s", r.body)
		require.Len(t, decode[[]readmodel.AlertView](t, r), 7)
		require.NotContains(t, r.header.Get("Link"), "access_token")
	})
}

func TestListAlertsRefusesBadParametersAndMissingKeys(t *testing.T) {
	t.Parallel()
	base := alertsGateway(t)
	for _, tt := range []struct{ query, field string }{
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=x", "limit"},
		{"status=lost", "status"},
		{"status=sent&status=dead", "status"},
		{"channel=Slack!", "channel"},
		{"rule=" + strings.Repeat("r", 129), "rule"},
		{"before=yesterday", "before"},
		{"cursor=garbage", "cursor"},
		{"type=order.created", "type"},
	} {
		r := get(t, base+"/alerts?"+tt.query, "X-API-Key", "k")
		p := requireProblem(t, r, 400)
		require.Len(t, p.Errors, 1, "%s: %s", tt.query, r.body)
		require.Equal(t, tt.field, p.Errors[0].Field, tt.query)
		require.NotEmpty(t, p.Errors[0].Message)
	}
	p := requireProblem(t, get(t, base+"/alerts?limit=0&status=x", "X-API-Key", "k"), 400)
	require.Len(t, p.Errors, 2, "every bad parameter is named")

	requireProblem(t, get(t, base+"/alerts"), 401)
	requireProblem(t, get(t, base+"/alerts", "X-API-Key", "wrong"), 401)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
