package socketio

import (
	"context"
	"encoding/json"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// appendTimeout bounds storing one client message.
const appendTimeout = 10 * time.Second

// chatItem is one /chat message waiting to be stored.
type chatItem struct {
	sock  *socket.Socket
	event json.RawMessage
}

// Chat batching: messages of all clients are stored in batches of up to
// chatBatch events per ingest call (one JetStream round trip for all),
// in arrival order; at most chatQueue wait.
const (
	chatBatch = 500
	chatQueue = 4096
)

// onChat queues each `message` {author, text} to be stored as a
// chat.message event; the broadcast to the namespace comes from the stream
// (Run), so it is sent only for stored messages and in stream order.
func (s *Server) onChat(sock *socket.Socket) {
	s.chat.join(sock, scope(sock))
	_ = sock.On(MessageEvent, func(args ...any) {
		if len(args) == 0 {
			return
		}
		if !rightsOf(sock).MayWrite(chatMessage) {
			_ = sock.Emit("error", map[string]any{"message": "forbidden: writing chat messages needs an ingest key " +
				"(or a publishable key for " + chatMessage + ") as the token; this connection may only read"})
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
		ev, _ := json.Marshal(map[string]any{
			"eventType": chatMessage, "userId": author, "timestamp": now.UnixMilli(), "metadata": json.RawMessage(meta),
		})
		select {
		case s.chatIn <- chatItem{sock: sock, event: ev}:
		default:
			_ = sock.Emit("error", map[string]any{"message": "server busy: message not stored"})
		}
	})
}

// storeChat stores the queued chat messages in batches until ctx is done.
func (s *Server) storeChat(ctx context.Context) {
	size := chatBatch
	if mb, ok := s.deps.Ingest.(interface{ MaxBatch() int }); ok {
		size = max(1, min(size, mb.MaxBatch())) // INGEST_MAX_BATCH may be lower
	}
	batch := make([]chatItem, 0, size)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case it := <-s.chatIn:
			batch = append(batch, it)
		}
	fill:
		for len(batch) < size {
			select {
			case it := <-s.chatIn:
				batch = append(batch, it)
			default:
				break fill
			}
		}
		s.storeBatch(ctx, batch)
	}
}

func (s *Server) storeBatch(ctx context.Context, batch []chatItem) {
	body := []byte{'['}
	for i, it := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, it.event...)
	}
	body = append(body, ']')
	ctx, cancel := context.WithTimeout(ctx, appendTimeout)
	defer cancel()
	outs, err := s.deps.Ingest.Append(ctx, body)
	for i, it := range batch {
		why := err
		if why == nil && outs[i].Problem != nil {
			why = outs[i].Problem
		}
		if why != nil {
			s.deps.Log.Warn("socket.io chat message not stored", "err", why)
			_ = it.sock.Emit("error", map[string]any{"message": "message not stored: " + why.Error()})
		}
	}
}

// onNotifications rebroadcasts a client's `order:update` {orderId, status}
// to the other clients of the namespace (compat), but for subscriber
// tokens' clients; a client needs write rights (an ingest key) to send one.
func (s *Server) onNotifications(sock *socket.Socket) {
	s.notes.join(sock, scope(sock))
	_ = sock.On(OrderUpdateEvent, func(args ...any) {
		if len(args) == 0 {
			return
		}
		if !rightsOf(sock).WriteAll {
			_ = sock.Emit("error", map[string]any{"message": "forbidden: sending order:update needs an ingest key as the token; this connection may only read"})
			return
		}
		in, _ := args[0].(map[string]any)
		out := map[string]any{"emittedAt": time.Now().UTC().Format(jsTime)}
		for k, v := range in {
			out[k] = v
		}
		_ = sock.Broadcast().Except(scopedRoom).Emit(OrderUpdateEvent, out)
	})
}
