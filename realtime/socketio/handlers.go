package socketio

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"golang.org/x/time/rate"

	"github.com/kilnhq/kiln/ingest"
)

// appendTimeout bounds storing one client message.
const appendTimeout = 10 * time.Second

// chatItem is one /chat message waiting to be stored.
type chatItem struct {
	sock  *socket.Socket
	ack   socket.Ack // nil: the client asked for none
	event json.RawMessage
}

// Chat batching: messages of all clients are stored in batches of up to
// chatBatch events per ingest call (one JetStream round trip for all),
// in arrival order; at most chatQueue wait (and SOCKETIO_CHAT_QUEUE_BYTES).
const (
	chatBatch = 500
	chatQueue = 4096
)

// refuse tells a client why its emit was not taken: an `error` event
// {message}, and the ack {error} when the client asked for one.
func refuse(sock *socket.Socket, ack socket.Ack, msg string) {
	_ = sock.Emit("error", map[string]any{"message": msg})
	if ack != nil {
		ack([]any{map[string]any{"error": msg}}, nil)
	}
}

// onChat queues each `message` {author, text} to be stored as a
// chat.message event; the broadcast to the namespace comes from the stream
// (Run), so it is sent only for stored messages and in stream order.
func (s *Server) onChat(sock *socket.Socket) {
	s.chat.join(sock, scope(sock))
	_ = sock.On(MessageEvent, func(args ...any) {
		args, ack := ackOf(args)
		if !rightsOf(sock).MayWrite(chatMessage) {
			refuse(sock, ack, "forbidden: writing chat messages needs an ingest key "+
				"(or a publishable key for "+chatMessage+") as the token; this connection may only read")
			return
		}
		m, err := decodeChat(args, s.cfg.MaxMessageBytes)
		if err != nil {
			refuse(sock, ack, err.Error())
			return
		}
		it := chatItem{sock: sock, ack: ack, event: chatEvent(m, time.Now())}
		n := int64(len(it.event))
		if s.chatBytes.Add(n) > int64(s.cfg.ChatQueueBytes) {
			s.chatBytes.Add(-n)
			refuse(sock, ack, fmt.Sprintf("server busy: %d bytes of chat messages wait to be stored "+
				"(SOCKETIO_CHAT_QUEUE_BYTES); message not stored", s.cfg.ChatQueueBytes))
			return
		}
		select {
		case s.chatIn <- it:
		default:
			s.chatBytes.Add(-n)
			refuse(sock, ack, fmt.Sprintf("server busy: %d chat messages wait to be stored; message not stored", chatQueue))
		}
	})
}

// storeChat stores the queued chat messages in batches of at most
// chatBatch messages (or INGEST_MAX_BATCH) and SOCKETIO_CHAT_BATCH_BYTES
// (but at least one message) until ctx is done.
func (s *Server) storeChat(ctx context.Context) {
	size := chatBatch
	if mb, ok := s.deps.Ingest.(interface{ MaxBatch() int }); ok {
		size = max(1, min(size, mb.MaxBatch())) // INGEST_MAX_BATCH may be lower
	}
	batch := make([]chatItem, 0, size)
	var next *chatItem // taken from the queue, past the last batch's bytes
	for {
		batch = batch[:0]
		if next != nil {
			batch, next = append(batch, *next), nil
		} else {
			select {
			case <-ctx.Done():
				return
			case it := <-s.chatIn:
				batch = append(batch, it)
			}
		}
		body := 2 + len(batch[0].event) // [ and ]
	fill:
		for len(batch) < size {
			select {
			case it := <-s.chatIn:
				if body+1+len(it.event) > s.cfg.ChatBatchBytes {
					next = &it
					break fill
				}
				body += 1 + len(it.event)
				batch = append(batch, it)
			default:
				break fill
			}
		}
		s.storeBatch(ctx, batch)
		for _, it := range batch {
			s.chatBytes.Add(-int64(len(it.event)))
		}
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
		why, what := err, "message not stored: "
		if why == nil && outs[i].Problem != nil {
			why = outs[i].Problem
			if outs[i].Problem.Status == http.StatusServiceUnavailable {
				what = "message not confirmed in time, it may be stored: " // JetStream may have taken it
			}
		}
		if why != nil {
			s.deps.Log.Warn("socket.io chat message not confirmed stored", "err", why)
			refuse(it.sock, it.ack, what+why.Error())
		} else if it.ack != nil {
			it.ack([]any{chatAck(outs[i])}, nil)
		}
	}
}

// chatAck is a stored /chat message's ack, {id, seq}; a message its
// type's schema refused under enforcement quarantine (kept in REJECTIONS,
// not stored, seq 0) says {id, seq, quarantined: true}, as POST /events
// answers "quarantined":true: the id is the one it is recovered under.
func chatAck(o ingest.Outcome) map[string]any {
	ack := map[string]any{"id": o.ID, "seq": o.Seq}
	if o.Quarantined {
		ack["quarantined"] = true
	}
	return ack
}

// onNotifications rebroadcasts a client's `order:update` {orderId, status}
// to the other clients of the namespace (compat), but for subscriber
// tokens' clients; a client needs write rights (an ingest key) to send
// one, and may send SOCKETIO_ORDER_UPDATE_RATE a second. Only orderId,
// status and the server's emittedAt are relayed: never a client's object.
func (s *Server) onNotifications(sock *socket.Socket) {
	s.notes.join(sock, scope(sock))
	limit := rate.NewLimiter(rate.Limit(s.cfg.OrderUpdateRate), max(1, int(math.Ceil(s.cfg.OrderUpdateRate))))
	_ = sock.On(OrderUpdateEvent, func(args ...any) {
		args, ack := ackOf(args)
		if !rightsOf(sock).WriteAll {
			refuse(sock, ack, "forbidden: sending order:update needs an ingest key as the token; this connection may only read")
			return
		}
		u, err := decodeOrderUpdate(args, s.cfg.MaxMessageBytes)
		if err != nil {
			refuse(sock, ack, err.Error())
			return
		}
		if !limit.Allow() {
			refuse(sock, ack, fmt.Sprintf("rate limited: at most %g order:update a second (SOCKETIO_ORDER_UPDATE_RATE); not relayed",
				s.cfg.OrderUpdateRate))
			return
		}
		_ = sock.Broadcast().Except(scopedRoom).Emit(OrderUpdateEvent, map[string]any{
			"orderId": u.OrderID, "status": u.Status, "emittedAt": time.Now().UTC().Format(jsTime),
		})
		if ack != nil {
			ack([]any{map[string]any{"relayed": true}}, nil)
		}
	})
}
