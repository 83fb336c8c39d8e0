package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
)

func TestMetricsCompatShape(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	now := time.Now()
	var evs []schemas.Event
	for i, typ := range []string{"page_view", "page_view", "page_view", "order.created", "order.created", "payment.failed"} {
		evs = append(evs, schemas.Event{ID: fmt.Sprint("m", i), EventType: typ, UserID: "u",
			Timestamp: now.Add(-time.Duration(i+1) * time.Second).UnixMilli(), Seq: uint64(i + 1)})
	}
	old := schemas.Event{ID: "old", EventType: "page_view", UserID: "u", Timestamp: now.Add(-10 * time.Minute).UnixMilli(), Seq: 7}
	_, err := h.counters.Apply(ctx, append(evs, old), now)
	require.NoError(t, err)
	require.NoError(t, h.counters.SetCheckpoint(ctx, 7))

	r := get(t, h.url+"/metrics")
	require.Equal(t, 200, r.status, "%s", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	m := decode[map[string]any](t, r)
	require.EqualValues(t, 6, m["totalEventsLastMinute"], "the old event is outside the last minute")
	require.Equal(t, []any{
		map[string]any{"_id": "page_view", "count": float64(3)},
		map[string]any{"_id": "order.created", "count": float64(2)},
		map[string]any{"_id": "payment.failed", "count": float64(1)},
	}, m["byType"])
	require.Equal(t, map[string]any{"page_view": float64(4), "order.created": float64(2), "payment.failed": float64(1)}, m["totals"])
	require.EqualValues(t, 7, m["total"])
	require.EqualValues(t, 7, m["asOfSeq"])
	series := m["series"].([]any)
	require.Len(t, series, 60)
	var inSeries float64
	for _, p := range series {
		inSeries += p.(map[string]any)["total"].(float64)
	}
	require.EqualValues(t, 7, inSeries, "the last hour holds every event")
	require.InDelta(t, time.Now().UnixMilli(), m["now"], 60_000)
}

func TestPrometheusCountsRequestsByRouteAndStatus(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	require.Equal(t, 200, get(t, h.url+"/events").status)
	require.Equal(t, 200, get(t, h.url+"/events").status)
	require.Equal(t, 400, get(t, h.url+"/events?limit=0").status)
	require.Equal(t, 404, get(t, h.url+"/events/nope").status)

	r := get(t, h.admin+"/metrics")
	require.Equal(t, 200, r.status)
	text := string(r.body)
	for _, line := range []string{
		`kiln_gateway_requests_total{method="GET",route="/events",status="200"} 2`,
		`kiln_gateway_requests_total{method="GET",route="/events",status="400"} 1`,
		`kiln_gateway_requests_total{method="GET",route="/events/:id",status="404"} 1`,
		`kiln_gateway_request_seconds_count{method="GET",route="/events"} 3`,
	} {
		require.True(t, strings.Contains(text, line), "missing %q in:\n%s", line, text)
	}
}
