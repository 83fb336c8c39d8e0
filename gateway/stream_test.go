package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/schemas"
)

func TestStreamStartsWithConnectedThenLiveEvents(t *testing.T) {
	t.Parallel()
	g := newLiveGateway(t, liveOptions{})
	publish(t, g.js, same(2, "before", "u1")...) // not sent: fanned out before the client came
	require.Eventually(t, func() bool { return promValue(g.reg, "kiln_gateway_sse_hub_last_seq") == 2 },
		5*time.Second, 5*time.Millisecond)
	c := openStream(t, g.url+"/stream")
	c.requireConnected(t)

	seqs := publish(t, g.js, event{Type: "order.created", User: "u1", Pad: 3}, event{Type: "page_view", User: "u2"})
	for i, want := range []string{"order.created", "page_view"} {
		f := c.nextEvent(t)
		require.Equal(t, strconv.FormatUint(seqs[i], 10), f.id)
		require.Equal(t, "message", f.event, "one fixed name: EventSource.onmessage gets every event")
		data := decodeData(t, f)
		require.Equal(t, want, data["eventType"])
		require.EqualValues(t, seqs[i], data["seq"], "the envelope plus seq")
		for _, field := range []string{"id", "userId", "timestamp", "receivedAt"} {
			require.Contains(t, data, field)
		}
		if i == 0 {
			require.Equal(t, map[string]any{"pad": "xxx"}, data["metadata"])
		}
	}
	require.EqualValues(t, seqs[1], promValue(g.reg, "kiln_gateway_sse_hub_last_seq"))
	require.EqualValues(t, 1, promValue(g.reg, "kiln_gateway_sse_clients"))
	require.EqualValues(t, 2, promValue(g.reg, `kiln_gateway_sse_frames_total{kind="event"}`))
	require.EqualValues(t, 1, promValue(g.reg, `kiln_gateway_sse_frames_total{kind="control"}`))
}

func TestStreamCarriesIngestedEvents(t *testing.T) {
	t.Parallel()
	g := newLiveGateway(t, liveOptions{withIngest: true})
	c := openStream(t, g.url+"/stream?type=order.*&userId=u7")
	c.requireConnected(t)
	r, err := http.Post(g.url+"/events", "application/json", strings.NewReader(`[
		{"eventType":"page_view","userId":"u7","timestamp":1700000000},
		{"id":"o-1","eventType":"order.created","userId":"u7","timestamp":1700000001,
		 "metadata":{"id":"o-1","status":"new","amount":12.5,"currency":"EUR","customerEmail":"a@b.c","createdAt":"2026-01-01T00:00:00Z"}}]`))
	require.NoError(t, err)
	body, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	_ = r.Body.Close()
	require.Equal(t, 202, r.StatusCode, "%s", body)

	f := c.nextEvent(t)
	require.Equal(t, "2", f.id)
	data := decodeData(t, f)
	require.Equal(t, "o-1", data["id"])
	require.Equal(t, "order.created", data["eventType"])
	require.EqualValues(t, 1700000001000, data["timestamp"], "stored in ms")
	require.EqualValues(t, 2, data["seq"])
	require.Equal(t, 12.5, data["metadata"].(map[string]any)["amount"])
	require.NotZero(t, data["receivedAt"])
}

// TestStreamResumesWithoutGapOrDuplicate disconnects a client after event
// k while 5,000 events are being published and reconnects it from k.
func TestStreamResumesWithoutGapOrDuplicate(t *testing.T) {
	t.Parallel()
	const total, k = 5000, 1200
	for _, resume := range []struct {
		name    string
		path    func(k uint64) string
		headers func(k uint64) []string
	}{
		{"Last-Event-ID", func(uint64) string { return "/stream?since=0" }, // a stale since loses to the header
			func(k uint64) []string { return []string{"Last-Event-ID", strconv.FormatUint(k, 10)} }},
		{"since", func(k uint64) string { return fmt.Sprintf("/stream?since=%d", k) }, func(uint64) []string { return nil }},
	} {
		t.Run(resume.name, func(t *testing.T) {
			t.Parallel()
			g := newLiveGateway(t, liveOptions{mutate: func(c *gateway.Config) { c.SSE.Buffer = 8192 }})
			first := openStream(t, g.url+"/stream")
			first.requireConnected(t)

			published := make(chan error, 1)
			go func() {
				for range total / 50 {
					if _, err := publishEvents(g.js, same(50, "tick", "u1")...); err != nil {
						published <- err
						return
					}
				}
				published <- nil
			}()
			got := first.eventsUntil(t, k)
			first.close()

			again := openStream(t, g.url+resume.path(k), resume.headers(k)...)
			again.requireConnected(t)
			got = append(got, again.eventsUntil(t, total)...)
			require.NoError(t, <-published)
			require.Equal(t, consecutive(1, total), got, "every event once, in order")
		})
	}
}

func TestStreamSinceOutsideTheHistory(t *testing.T) {
	t.Parallel()
	g := newLiveGateway(t, liveOptions{})
	publish(t, g.js, same(10, "a", "u1")...)
	stream, err := g.js.Stream(context.Background(), schemas.StreamName)
	require.NoError(t, err)
	require.NoError(t, stream.Purge(context.Background(), jetstream.WithPurgeSequence(7)))

	for _, since := range []string{"0", "2", "5"} {
		c := openStream(t, g.url+"/stream?since="+since)
		c.requireConnected(t)
		reset := c.nextEvent(t)
		require.Equal(t, "reset", reset.event)
		require.Empty(t, reset.id)
		require.Equal(t, map[string]any{"reason": "history starts at 7", "firstSeq": float64(7)}, decodeData(t, reset))
		require.Equal(t, consecutive(7, 10), c.eventsUntil(t, 10), "since=%s", since)
		c.close()
	}

	current := openStream(t, g.url+"/stream?since=10")
	current.requireConnected(t)
	future := openStream(t, g.url+"/stream", "Last-Event-ID", "1000000")
	future.requireConnected(t)
	publish(t, g.js, same(2, "a", "u1")...)
	require.Equal(t, []uint64{11, 12}, current.eventsUntil(t, 12), "since = last seq: live, no duplicate")
	require.Equal(t, []uint64{11, 12}, future.eventsUntil(t, 12), "since past the last seq: just live")
	require.Eventually(t, func() bool {
		info, err := stream.Info(context.Background())
		return err == nil && info.State.Consumers == 1
	}, 3*time.Minute, 10*time.Millisecond, "catch-up consumers are deleted; the hub's stays")
}

func TestStreamFiltersWithWildcards(t *testing.T) {
	t.Parallel()
	g := newLiveGateway(t, liveOptions{})
	mix := []event{
		{Type: "order.created", User: "u1"}, {Type: "order.canceled", User: "u2"}, {Type: "order", User: "u1"},
		{Type: "order.item.added", User: "u2"}, {Type: "page_view", User: "u1"}, {Type: "orders.created", User: "u2"},
		{Type: "payment.failed", User: "u2"}, {Type: "order.created", User: "u2"},
	}
	filters := []struct {
		query string
		match func(event) bool
	}{
		{"type=order.*", func(e event) bool { return strings.Count(e.Type, ".") == 1 && strings.HasPrefix(e.Type, "order.") }},
		{"type=order.>", func(e event) bool { return strings.HasPrefix(e.Type, "order.") }},
		{"type=order.created&type=page_view", func(e event) bool { return e.Type == "order.created" || e.Type == "page_view" }},
		{"type=*.created", func(e event) bool { return strings.HasSuffix(e.Type, ".created") && strings.Count(e.Type, ".") == 1 }},
		{"type=*&type=order.created", func(e event) bool { return !strings.Contains(e.Type, ".") || e.Type == "order.created" }},
		{"userId=u1", func(e event) bool { return e.User == "u1" }},
		{"type=order.>&userId=u1", func(e event) bool { return strings.HasPrefix(e.Type, "order.") && e.User == "u1" }},
	}
	// The last event matches every filter, so reading up to it shows each
	// client received exactly its events.
	last := event{Type: "order.created", User: "u1"}
	var clients, resumed []*sseClient
	for _, f := range filters {
		c := openStream(t, g.url+"/stream?"+f.query)
		c.requireConnected(t)
		clients = append(clients, c)
	}
	seqs := publish(t, g.js, append(mix, last)...)
	for _, f := range filters {
		c := openStream(t, g.url+"/stream?since=0&"+f.query) // the catch-up filters alike
		c.requireConnected(t)
		resumed = append(resumed, c)
	}
	for i, f := range filters {
		var want []uint64
		for j, e := range append(mix, last) {
			if f.match(e) {
				want = append(want, seqs[j])
			}
		}
		require.Equal(t, want, clients[i].eventsUntil(t, seqs[len(seqs)-1]), "live %s", f.query)
		require.Equal(t, want, resumed[i].eventsUntil(t, seqs[len(seqs)-1]), "catch-up %s", f.query)
	}
}

func TestStreamRefusesBadParameters(t *testing.T) {
	t.Parallel()
	g := newLiveGateway(t, liveOptions{})
	tests := []struct {
		query   string
		headers []string
		field   string
	}{
		{"type=order.>.x", nil, "type"},
		{"type=a..b", nil, "type"},
		{"type=or*der", nil, "type"},
		{"type=order.created,page_view", nil, "type"},
		{"type=" + strings.Repeat("x", 129), nil, "type"},
		{"since=-1", nil, "since"},
		{"since=abc", nil, "since"},
		{"since=1&since=2", nil, "since"},
		{"userId=" + strings.Repeat("u", 257), nil, "userId"},
		{"limit=5", nil, "limit"},
		{"alerts=maybe", nil, "alerts"},
		{"", []string{"Last-Event-ID", "abc"}, "Last-Event-ID"},
	}
	for _, tt := range tests {
		p := requireProblem(t, get(t, g.url+"/stream?"+tt.query, tt.headers...), 400)
		require.Len(t, p.Errors, 1, "%s %v", tt.query, tt.headers)
		require.Equal(t, tt.field, p.Errors[0].Field, "%s %v", tt.query, tt.headers)
	}
}
