package grpcapi

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ordersv1 "github.com/kilnhq/kiln/realtime/gen/orders/v1"
	"github.com/kilnhq/kiln/schemas"
)

// Chat event types: order.chat from ChatOrders, chat.message from the
// Socket.IO /chat namespace. Both reach every chat client of both.
const (
	OrderChat   = "order.chat"
	ChatMessage = "chat.message"
	// serverAuthor signs the acknowledgements (compat).
	serverAuthor = "server"
	// anonymous is the userId of a chat message without an author.
	anonymous = "anonymous"
)

// ChatMeta is the metadata of the chat events.
type ChatMeta struct {
	Author    string `json:"author"`
	Text      string `json:"text"`
	OrderID   string `json:"orderId,omitempty"`
	SentAt    string `json:"sentAt,omitempty"`
	CreatedAt string `json:"createdAt,omitempty"`
}

// ChatOf reads a chat event; ok is false for other events.
func ChatOf(ev schemas.Event) (ChatMeta, bool) {
	if ev.EventType != OrderChat && ev.EventType != ChatMessage {
		return ChatMeta{}, false
	}
	var m ChatMeta
	if json.Unmarshal(ev.Metadata, &m) != nil {
		return ChatMeta{}, false
	}
	if m.SentAt == "" {
		m.SentAt = m.CreatedAt
	}
	if m.SentAt == "" {
		m.SentAt = time.UnixMilli(ev.Timestamp).UTC().Format(time.RFC3339Nano)
	}
	return m, true
}

func chatField(f string) string {
	switch f {
	case "metadata.author":
		return "author"
	case "metadata.text":
		return "text"
	case "metadata.orderId":
		return "order_id"
	}
	return strings.TrimPrefix(f, "metadata.")
}

// ChatOrders stores every incoming message as an order.chat event,
// answers each with the old server's acknowledgement and delivers every
// chat message stored (from any ChatOrders stream or /chat client, this
// one's included) in stream order. A stream that falls a full buffer behind
// is ended with ResourceExhausted.
func (o *orderService) ChatOrders(stream ordersv1.OrderService_ChatOrdersServer) error {
	member := o.s.deps.Feed.Join(o.s.cfg.SubscribeBuffer)
	defer member.Leave()
	acks := make(chan *ordersv1.OrderChatMessage, 16)
	received := make(chan error, 1)
	go func() {
		for {
			in, err := stream.Recv()
			if err == nil {
				err = o.chat(stream, in, acks)
			}
			if err != nil {
				received <- err
				return
			}
		}
	}()
	for {
		select {
		case ack := <-acks:
			if err := stream.Send(ack); err != nil {
				return err
			}
		case ev := <-member.C:
			m, ok := ChatOf(*ev)
			if !ok {
				continue
			}
			if err := stream.Send(&ordersv1.OrderChatMessage{Author: m.Author, Text: m.Text, OrderId: m.OrderID, SentAt: m.SentAt}); err != nil {
				return err
			}
		case <-member.Done():
			return status.Errorf(codes.ResourceExhausted, "chat stream ended: %v", member.Err())
		case err := <-received:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-o.s.stopping.Done():
			return status.Error(codes.Unavailable, "server shutting down")
		}
	}
}

// chat stores one incoming message and queues its acknowledgement.
func (o *orderService) chat(stream ordersv1.OrderService_ChatOrdersServer, in *ordersv1.OrderChatMessage, acks chan<- *ordersv1.OrderChatMessage) error {
	author := in.GetAuthor()
	if author == "" {
		author = anonymous
	}
	now := time.Now().UTC()
	sentAt := in.GetSentAt()
	if sentAt == "" {
		sentAt = now.Format(time.RFC3339Nano)
	}
	raw, err := json.Marshal(ChatMeta{Author: author, Text: in.GetText(), OrderID: in.GetOrderId(), SentAt: sentAt})
	if err != nil {
		return status.Errorf(codes.Internal, "encode chat message: %v", err)
	}
	if _, err := o.s.appendOne(stream.Context(), newEvent{EventType: OrderChat, UserID: author,
		Timestamp: float64(now.UnixMilli()), Metadata: raw}, chatField); err != nil {
		return err
	}
	ack := &ordersv1.OrderChatMessage{Author: serverAuthor, Text: "Ack: " + in.GetText(), OrderId: in.GetOrderId(),
		SentAt: time.Now().UTC().Format(time.RFC3339Nano)}
	select {
	case acks <- ack:
		return nil
	case <-stream.Context().Done():
		return stream.Context().Err()
	}
}
