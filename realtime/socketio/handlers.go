package socketio

import (
	"context"
	"encoding/json"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// appendTimeout bounds storing one client message.
const appendTimeout = 10 * time.Second

// onChat stores each `message` {author, text} as a chat.message event; the
// broadcast to the namespace comes from the stream (Run), so it is sent
// only for stored messages and in stream order.
func (s *Server) onChat(sock *socket.Socket) {
	_ = sock.On(MessageEvent, func(args ...any) {
		if len(args) == 0 {
			return
		}
		in, _ := args[0].(map[string]any)
		author, _ := in["author"].(string)
		text, _ := in["text"].(string)
		if author == "" {
			author = "anonymous"
		}
		now := time.Now()
		meta, _ := json.Marshal(map[string]string{"author": author, "text": text, "createdAt": now.UTC().Format(jsTime)})
		body, _ := json.Marshal([]map[string]any{{
			"eventType": chatMessage, "userId": author, "timestamp": now.UnixMilli(), "metadata": json.RawMessage(meta),
		}})
		ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
		defer cancel()
		outs, err := s.deps.Ingest.Append(ctx, body)
		if err == nil && outs[0].Problem != nil {
			err = outs[0].Problem
		}
		if err != nil {
			s.deps.Log.Warn("socket.io chat message not stored", "err", err)
			_ = sock.Emit("error", map[string]any{"message": "message not stored: " + err.Error()})
		}
	})
}

// onNotifications rebroadcasts a client's `order:update` {orderId, status}
// to the other clients of the namespace (compat); the clients are
// authenticated by the namespace's middleware.
func (s *Server) onNotifications(sock *socket.Socket) {
	_ = sock.On(OrderUpdateEvent, func(args ...any) {
		if len(args) == 0 {
			return
		}
		in, _ := args[0].(map[string]any)
		out := map[string]any{"emittedAt": time.Now().UTC().Format(jsTime)}
		for k, v := range in {
			out[k] = v
		}
		_ = sock.Broadcast().Emit(OrderUpdateEvent, out)
	})
}
