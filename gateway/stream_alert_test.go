package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// TestStreamForwardsNewAlerts announces alerts on core NATS as the
// notifier does and checks they reach every client that did not opt out,
// whatever its event filter, between the events and without an id.
func TestStreamForwardsNewAlerts(t *testing.T) {
	t.Parallel()
	g := newLiveGateway(t, liveOptions{})
	all := openStream(t, g.url+"/stream")
	narrow := openStream(t, g.url+"/stream?type=order.*&userId=u9")
	off := openStream(t, g.url+"/stream?alerts=0")
	for _, c := range []*sseClient{all, narrow, off} {
		c.requireConnected(t)
	}
	alert := readmodel.Alert{ID: "a-1", Rule: "big-orders", Kind: "each", Message: "order over 100\nby u1",
		Channels: []string{"slack"}, EventID: "e-1", EventType: "page_view", EventSeq: 1, UserID: "u1",
		DecidedAt: 1767225600000, Status: readmodel.DeliveryPending,
		Deliveries: []readmodel.Delivery{{Channel: "slack", Status: readmodel.DeliveryPending}}}
	pretty, err := json.MarshalIndent(alert, "", "  ") // several lines: the frame must still be one data line
	require.NoError(t, err)
	nc := g.js.Conn()

	first := publish(t, g.js, event{Type: "page_view", User: "u1"})
	f := all.nextEvent(t)
	require.Equal(t, "message", f.event)
	require.Equal(t, first[0], f.seq(t))
	require.NoError(t, nc.Publish(readmodel.NewAlertSubject, []byte("not json")))
	require.NoError(t, nc.Publish(readmodel.NewAlertSubject, pretty))
	f = all.nextEvent(t)
	require.Equal(t, "alert", f.event, "the malformed announcement is skipped")
	require.Empty(t, f.id, "alert frames do not move Last-Event-ID")
	var got readmodel.Alert
	require.NoError(t, json.Unmarshal([]byte(f.data), &got))
	require.Equal(t, alert, got)
	second := publish(t, g.js, event{Type: "order.created", User: "u9"})
	require.Equal(t, second, all.eventsUntil(t, second[0]))

	f = narrow.nextEvent(t)
	require.Equal(t, "alert", f.event, "alerts ignore the event filter")
	require.Equal(t, second, narrow.eventsUntil(t, second[0]), "one alert frame, then the matching event")

	require.Equal(t, []uint64{first[0], second[0]}, off.eventsUntil(t, second[0]), "alerts=0: events only")
	require.EqualValues(t, 2, promValue(g.reg, `kiln_gateway_sse_frames_total{kind="alert"}`))
}

// TestStreamResponseIsPlainHTTP reads GET /stream off the wire: the
// stream takes its connection over, so the head is written by hand and the
// body is delimited by the connection's end.
func TestStreamResponseIsPlainHTTP(t *testing.T) {
	t.Parallel()
	g := newLiveGateway(t, liveOptions{})
	host := strings.TrimPrefix(g.url, "http://")
	conn, err := net.Dial("tcp", host)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /stream?type=a HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(frameWait)))
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	require.True(t, resp.Close, "Connection: close")
	require.Empty(t, resp.Header.Get("Content-Length"))
	require.Empty(t, resp.TransferEncoding)
	// The stream delivers what is published after its connected frame (the
	// head is written before the client joins the fan-out).
	connected := "data: {\"connected\":true}\n\n"
	got := make([]byte, len(connected))
	_, err = io.ReadFull(resp.Body, got)
	require.NoError(t, err)
	require.Equal(t, connected, string(got))
	seqs := publish(t, g.js, same(1, "a", "u1")...)
	want := fmt.Sprintf("id: %d\nevent: message\ndata: {", seqs[0])
	got = make([]byte, len(want))
	_, err = io.ReadFull(resp.Body, got)
	require.NoError(t, err)
	require.Equal(t, want, string(got))
	g.stop()
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "the body ends with the connection")
	require.True(t, strings.HasSuffix(string(rest), "event: error\ndata: {\"reason\":\"server shutting down\"}\n\n"), "%q", rest)
}

// TestStreamFramesEveryStoredShape checks the frame of envelopes stored
// the way ingest stores them (spliced with seq, not decoded) and of others
// (decoded and re-encoded): both are the envelope plus seq, on one line.
func TestStreamFramesEveryStoredShape(t *testing.T) {
	t.Parallel()
	g := newLiveGateway(t, liveOptions{})
	c := openStream(t, g.url+"/stream")
	c.requireConnected(t)
	stored := []struct {
		body   string
		header bool
	}{
		{`{"id":"a","eventType":"x.y","userId":"u1","timestamp":1,"metadata":{"k":1},"receivedAt":2}`, true},
		{`{"id":"b","eventType":"x.y","userId":"u1","timestamp":1,"receivedAt":2}`, false},                  // no user header
		{"{\"id\":\"c\",\"eventType\":\"x.y\",\"userId\":\"u1\",\n\"timestamp\":1,\"receivedAt\":2}", true}, // two lines
		{`{"id":"d","eventType":"x.y","userId":"u1","timestamp":1,"metadata":{"seq":7},"receivedAt":2}`, true},
	}
	for _, s := range stored {
		msg := &nats.Msg{Subject: schemas.Subject("x.y"), Data: []byte(s.body), Header: nats.Header{}}
		if s.header {
			msg.Header.Set(schemas.HeaderUserID, "u1")
		}
		_, err := g.js.PublishMsg(context.Background(), msg)
		require.NoError(t, err)
	}
	for i, s := range stored {
		f := c.nextEvent(t)
		require.Equal(t, uint64(i+1), f.seq(t))
		require.NotContains(t, f.data, "\n")
		var want map[string]any
		require.NoError(t, json.Unmarshal([]byte(s.body), &want))
		want["seq"] = float64(i + 1)
		require.Equal(t, want, decodeData(t, f), "%s", s.body)
	}
}
