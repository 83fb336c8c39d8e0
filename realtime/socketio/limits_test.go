package socketio

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// Issue 21 item 6: the Socket.IO surface is bounded by bytes and by count,
// each bound with a setting and a clear error to the client.

// TestChatMessageSizeLimits: SOCKETIO_MAX_MESSAGE_BYTES bounds a /chat
// message as decoded (an error ack naming it, nothing stored), and a text
// of `<` is stored one byte a character (it was 6 after escaping);
// SOCKETIO_MAX_PACKET_BYTES bounds a packet on the wire (close 1009).
func TestChatMessageSizeLimits(t *testing.T) {
	h := startServer(t, Config{MaxMessageBytes: 1024, MaxPacketBytes: 16 << 10})
	c := h.dialClient(t).joined(ChatNamespace)

	c.emit(ChatNamespace, MessageEvent, map[string]any{"author": "a", "text": strings.Repeat("x", 2000)}, 1)
	got := c.ack(ChatNamespace, 1)
	require.Contains(t, got["error"], "SOCKETIO_MAX_MESSAGE_BYTES")

	c.emit(ChatNamespace, MessageEvent, map[string]any{"author": "a", "text": strings.Repeat("<", 1000)}, 2)
	got = c.ack(ChatNamespace, 2)
	require.NotContains(t, got, "error")
	require.NotEmpty(t, got["id"], "stored: %v", got)
	require.EqualValues(t, 1, h.stored(t, chatMessage), "only the message within the limit is stored")
	sizes := h.appendSizes()
	require.Less(t, sizes[len(sizes)-1], 1300, "a text of 1000 `<` is stored as about 1000 bytes, not 6000")

	// 20 KB on the wire: the WebSocket is closed with 1009 (or reset, when
	// the server closes before reading what the client still sends), a
	// polling POST is answered 413.
	b, err := json.Marshal([]any{MessageEvent, map[string]any{"author": "a", "text": strings.Repeat("y", 20<<10)}})
	require.NoError(t, err)
	_ = c.ws.WriteMessage(websocket.TextMessage, append([]byte("42"+ChatNamespace+","), b...))
	for err == nil { // the broadcast of the stored message may come first
		_, err = c.read()
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		require.Equal(t, websocket.CloseMessageTooBig, ce.Code)
	} else {
		require.ErrorIs(t, err, syscall.ECONNRESET)
	}
	sid := h.pollingSession(t)
	resp, _ := h.do(t, "POST", Path+"?EIO=4&transport=polling&sid="+sid, "42"+ChatNamespace+","+string(b))
	require.Equal(t, 413, resp.StatusCode)
	require.EqualValues(t, 1, h.stored(t, chatMessage))
	h.dialClient(t).joined(ChatNamespace) // still served
}

// TestChatQueueIsBoundedInBytes: while storing is held, messages queue up
// to SOCKETIO_CHAT_QUEUE_BYTES; the next ones are refused "server busy"
// naming the setting, and the queued ones are all stored once storing
// resumes. Before, 4,096 messages of any size could wait.
func TestChatQueueIsBoundedInBytes(t *testing.T) {
	h := startServer(t, Config{ChatQueueBytes: 64 << 10})
	c := h.dialClient(t).joined(ChatNamespace)
	h.hold()
	text := strings.Repeat("q", 10<<10)
	for i := 1; i <= 10; i++ {
		c.emit(ChatNamespace, MessageEvent, map[string]any{"author": "a", "text": text}, i)
	}
	// The first six fit in 64 KiB (the first waits in Append): the rest
	// are answered at once.
	got := c.acks(ChatNamespace, 4)
	var refused []int
	for id, a := range got {
		require.Contains(t, a["error"], "server busy")
		require.Contains(t, a["error"], "SOCKETIO_CHAT_QUEUE_BYTES")
		refused = append(refused, id)
	}
	slices.Sort(refused)
	h.release()
	for id, a := range c.acks(ChatNamespace, 6) {
		require.NotContains(t, a, "error", "message %d", id)
	}
	require.Equal(t, []int{7, 8, 9, 10}, refused)
	require.EqualValues(t, 6, h.stored(t, chatMessage))
}

// TestChatBatchIsBoundedInBytes: messages waiting together are appended
// in bodies of at most SOCKETIO_CHAT_BATCH_BYTES, and every one is stored.
// Before, up to 500 were joined into one body of any size.
func TestChatBatchIsBoundedInBytes(t *testing.T) {
	h := startServer(t, Config{ChatBatchBytes: 4096})
	c := h.dialClient(t).joined(ChatNamespace)
	h.hold()
	c.emit(ChatNamespace, MessageEvent, map[string]any{"text": "first"}, 1) // held in Append
	require.Eventually(t, func() bool { return len(h.appendSizes()) == 1 }, 2*time.Minute, 10*time.Millisecond)
	text := strings.Repeat("b", 1000)
	for i := 2; i <= 21; i++ {
		c.emit(ChatNamespace, MessageEvent, map[string]any{"text": text}, i)
	}
	// Every message is queued before storing resumes: the last one's
	// refusal or acceptance is decided on arrival, and arrival is ordered.
	require.Eventually(t, func() bool { return len(h.srv.chatIn) == 20 }, 2*time.Minute, 10*time.Millisecond)
	h.release()
	for i := 1; i <= 21; i++ {
		require.NotContains(t, c.ack(ChatNamespace, i), "error")
	}
	sizes := h.appendSizes()
	require.Greater(t, len(sizes), 5, "20 messages of 1 KB are appended in several bodies: %v", sizes)
	for _, n := range sizes {
		require.LessOrEqual(t, n, 4096, "append bodies: %v", sizes)
	}
	require.EqualValues(t, 21, h.stored(t, chatMessage))
}

// TestOrderUpdateRebroadcastIsChecked: an order:update is relayed only as
// {orderId, status, emittedAt} (never the client's other fields); one that
// is not an object with string orderId and status, or is over
// SOCKETIO_MAX_MESSAGE_BYTES, is refused with an error ack and relayed to
// nobody; past SOCKETIO_ORDER_UPDATE_RATE one is refused naming it.
func TestOrderUpdateRebroadcastIsChecked(t *testing.T) {
	h := startServer(t, Config{MaxMessageBytes: 1024, OrderUpdateRate: 0.001}) // a burst of one, then one in 1,000 s
	listener := h.dialClient(t).joined(NotificationsNamespace)
	id := 0
	for _, tt := range []struct {
		name string
		data any
		why  string
	}{
		{"not an object", "hello", "expected an object"},
		{"an array", []any{1, 2}, "expected an object"},
		{"no orderId", map[string]any{"status": "paid"}, "orderId: required"},
		{"numeric orderId", map[string]any{"orderId": 5, "status": "paid"}, "orderId: expected a string"},
		{"object status", map[string]any{"orderId": "o", "status": map[string]any{"x": 1}}, "status: expected a string"},
		{"empty", map[string]any{"orderId": "", "status": ""}, "must not be empty"},
		{"long orderId", map[string]any{"orderId": strings.Repeat("o", 200), "status": "paid"}, "at most 128 characters"},
		{"too large", map[string]any{"orderId": "o", "status": strings.Repeat("s", 2000)}, "SOCKETIO_MAX_MESSAGE_BYTES"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sender := h.dialClient(t).joined(NotificationsNamespace)
			id++
			sender.emit(NotificationsNamespace, OrderUpdateEvent, tt.data, id)
			got := sender.ack(NotificationsNamespace, id)
			require.Contains(t, got["error"], tt.why)
		})
	}
	sender := h.dialClient(t).joined(NotificationsNamespace)
	sender.emit(NotificationsNamespace, OrderUpdateEvent, map[string]any{
		"orderId": "o-1", "status": "paid", "html": "<script>", "nested": map[string]any{"a": strings.Repeat("z", 500)},
	}, 100)
	require.Equal(t, map[string]any{"relayed": true}, sender.ack(NotificationsNamespace, 100))
	got := listener.event(NotificationsNamespace, OrderUpdateEvent) // the first one the listener sees
	require.Equal(t, "o-1", got["orderId"])
	require.Equal(t, "paid", got["status"])
	require.NotEmpty(t, got["emittedAt"])
	require.Len(t, got, 3, "only orderId, status and emittedAt are relayed: %v", got)

	sender.emit(NotificationsNamespace, OrderUpdateEvent, map[string]any{"orderId": "o-2", "status": "paid"}, 101)
	require.Contains(t, sender.ack(NotificationsNamespace, 101)["error"], "SOCKETIO_ORDER_UPDATE_RATE")
	other := h.dialClient(t).joined(NotificationsNamespace) // the rate is per socket
	other.emit(NotificationsNamespace, OrderUpdateEvent, map[string]any{"orderId": "o-3", "status": "paid"}, 1)
	require.Equal(t, map[string]any{"relayed": true}, other.ack(NotificationsNamespace, 1))
	require.Equal(t, "o-3", listener.event(NotificationsNamespace, OrderUpdateEvent)["orderId"], "o-2 was not relayed")
}

// TestMaxConnections: past SOCKETIO_MAX_CONNECTIONS a handshake is
// answered 503 naming the setting; connected clients go on, and a new
// one is served once one leaves.
func TestMaxConnections(t *testing.T) {
	h := startServer(t, Config{MaxConnections: 2})
	first := h.dialClient(t).joined(ChatNamespace)
	h.dialClient(t).joined(ChatNamespace)
	_, err := h.tryDial(t)
	require.ErrorContains(t, err, "answered 503")
	resp, body := h.get(t, Path+"?EIO=4&transport=polling")
	require.Equal(t, 503, resp.StatusCode)
	require.Contains(t, body, "SOCKETIO_MAX_CONNECTIONS")
	require.NotEmpty(t, resp.Header.Get("Retry-After"))

	first.emit(ChatNamespace, MessageEvent, map[string]any{"text": "still served"}, 1)
	require.NotContains(t, first.ack(ChatNamespace, 1), "error")
	require.NoError(t, first.ws.Close())
	require.Eventually(t, func() bool {
		c, err := h.tryDial(t)
		if err == nil {
			_ = c.ws.Close()
		}
		return err == nil
	}, 2*time.Minute, 50*time.Millisecond)
}

// TestHandshakeRate: past SOCKETIO_HANDSHAKE_RATE a handshake, polling or
// WebSocket, is answered 429 with Retry-After, naming the setting; a
// session already open goes on, its polling requests included.
func TestHandshakeRate(t *testing.T) {
	h := startServer(t, Config{HandshakeRate: 0.001}) // a burst of one, then one in 1,000 s
	sid := h.pollingSession(t)
	resp, body := h.get(t, Path+"?EIO=4&transport=polling")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	require.Contains(t, body, "SOCKETIO_HANDSHAKE_RATE")
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	url := "ws" + strings.TrimPrefix(h.base, "http") + Path + "?EIO=4&transport=websocket"
	_, wsResp, err := (&websocket.Dialer{HandshakeTimeout: time.Minute}).Dial(url, nil)
	require.Error(t, err)
	require.NotNil(t, wsResp)
	wsResp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, wsResp.StatusCode)

	// The open session connects to /chat over polling and is answered.
	resp, body = h.do(t, http.MethodPost, Path+"?EIO=4&transport=polling&sid="+sid, "40/chat,")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	resp, body = h.get(t, Path+"?EIO=4&transport=polling&sid="+sid)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, "40/chat,")
}

func TestConfigValidateNamesTheSetting(t *testing.T) {
	for _, tt := range []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.MaxConnections = 0 }, "SOCKETIO_MAX_CONNECTIONS"},
		{func(c *Config) { c.MaxPacketBytes = 10 }, "SOCKETIO_MAX_PACKET_BYTES"},
		{func(c *Config) { c.MaxMessageBytes = 128 << 10 }, "SOCKETIO_MAX_MESSAGE_BYTES (131072) must not exceed SOCKETIO_MAX_PACKET_BYTES"},
		{func(c *Config) { c.ChatQueueBytes = 1 }, "SOCKETIO_CHAT_QUEUE_BYTES"},
		{func(c *Config) { c.ChatBatchBytes = 1 }, "SOCKETIO_CHAT_BATCH_BYTES"},
		{func(c *Config) { c.ClientBufferBytes = 1 }, "SOCKETIO_CLIENT_BUFFER_BYTES"},
		{func(c *Config) { c.OrderUpdateRate = 0 }, "SOCKETIO_ORDER_UPDATE_RATE"},
		{func(c *Config) { c.HandshakeRate = 2e6 }, "SOCKETIO_HANDSHAKE_RATE"},
		{func(c *Config) { c.WriteTimeout = 0 }, "SOCKETIO_WRITE_TIMEOUT"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			c := Defaults()
			require.NoError(t, c.Validate())
			tt.mutate(&c)
			require.ErrorContains(t, c.Validate(), tt.want)
		})
	}
}
