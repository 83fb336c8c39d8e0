package grpcapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/kilnhq/kiln/readmodel"
	ordersv1 "github.com/kilnhq/kiln/realtime/gen/orders/v1"
	"github.com/kilnhq/kiln/schemas"
)

// Order defaults of the order system (CONTRACT.md section 6).
const (
	orderCreated     = "order.created"
	defaultStatus    = "created"
	maxOrderIDLength = 128
)

// orderService is orders.OrderService.
type orderService struct {
	ordersv1.UnimplementedOrderServiceServer
	s *Server
}

// orderMeta is the metadata of an order.created event.
type orderMeta struct {
	ID            string  `json:"id"`
	Status        string  `json:"status"`
	Amount        float64 `json:"amount"`
	Currency      string  `json:"currency"`
	CustomerEmail string  `json:"customerEmail"`
	Notes         string  `json:"notes,omitempty"`
	CreatedAt     string  `json:"createdAt"`
}

// orderFields maps the event's field paths to the message's.
var orderFields = map[string]string{
	"id": "order.id", "metadata.id": "order.id", "metadata.status": "order.status",
	"metadata.amount": "order.amount", "metadata.customerEmail": "order.customer_email",
	"metadata.notes": "order.notes", "metadata.createdAt": "order.created_at",
}

func orderField(f string) string {
	if name, ok := orderFields[f]; ok {
		return name
	}
	return "order"
}

// CreateOrder stores an order.created event whose id is the order id (the
// idempotency key: the same id again returns the order first stored) and
// returns the order as stored. An order its schema refuses under
// enforcement quarantine is answered as sent, with the response header
// kiln-quarantined: true.
func (o *orderService) CreateOrder(ctx context.Context, req *ordersv1.CreateOrderRequest) (*ordersv1.CreateOrderResponse, error) {
	in := req.GetOrder()
	if in == nil {
		return nil, invalid("order is required", "order", "is required")
	}
	var violations []string
	if strings.TrimSpace(in.GetCustomerEmail()) == "" {
		violations = append(violations, "order.customer_email", "is required")
	}
	if !(in.GetAmount() > 0) {
		violations = append(violations, "order.amount", "must be greater than 0")
	}
	if len(in.GetId()) > maxOrderIDLength {
		violations = append(violations, "order.id", fmt.Sprintf("must be at most %d characters", maxOrderIDLength))
	}
	createdAt := in.GetCreatedAt()
	if createdAt == "" {
		createdAt = time.Now().UTC().Format(time.RFC3339Nano)
	} else if _, err := time.Parse(time.RFC3339Nano, createdAt); err != nil {
		violations = append(violations, "order.created_at", "must be an RFC 3339 time")
	}
	if len(violations) > 0 {
		return nil, invalid("invalid order", violations...)
	}
	meta := orderMeta{ID: in.GetId(), Status: in.GetStatus(), Amount: in.GetAmount(), Currency: o.s.cfg.DefaultCurrency,
		CustomerEmail: in.GetCustomerEmail(), Notes: in.GetNotes(), CreatedAt: createdAt}
	if meta.ID == "" {
		meta.ID = ulid.Make().String()
	}
	if meta.Status == "" {
		meta.Status = defaultStatus
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode order: %v", err)
	}
	out, err := o.s.appendOne(ctx, newEvent{
		ID: meta.ID, EventType: orderCreated, UserID: meta.CustomerEmail,
		Timestamp: float64(time.Now().UnixMilli()), Metadata: raw,
	}, orderField)
	if err != nil {
		return nil, err
	}
	if out.Quarantined {
		// Kept in REJECTIONS, not stored: there is no stored order to read
		// back. The old clients get the order as sent (their proto has no
		// field to say more); a header tells the clients that look.
		if err := grpc.SetHeader(ctx, metadata.Pairs(QuarantinedHeader, "true")); err != nil {
			return nil, status.Errorf(codes.Internal, "set header: %v", err)
		}
		return &ordersv1.CreateOrderResponse{Order: &ordersv1.OrderMessage{Id: meta.ID, CustomerEmail: meta.CustomerEmail,
			Amount: meta.Amount, Status: meta.Status, Notes: meta.Notes, CreatedAt: meta.CreatedAt}}, nil
	}
	stored, err := o.s.storedOrder(ctx, out.Seq)
	if err != nil {
		return nil, err
	}
	return &ordersv1.CreateOrderResponse{Order: stored}, nil
}

// storedOrder reads back the order.created event at seq: a duplicate id
// answers with the order first stored under it.
func (s *Server) storedOrder(ctx context.Context, seq uint64) (*ordersv1.OrderMessage, error) {
	stream, err := s.deps.JetStream.Stream(ctx, schemas.StreamName)
	if err != nil {
		return nil, s.storeError(ctx, codes.Unavailable, "the event store", err)
	}
	msg, err := stream.GetMsg(ctx, seq)
	if err != nil {
		return nil, s.storeError(ctx, codes.Unavailable, "the event store", err)
	}
	var ev schemas.Event
	var meta orderMeta
	if err := json.Unmarshal(msg.Data, &ev); err != nil || json.Unmarshal(ev.Metadata, &meta) != nil {
		return nil, status.Error(codes.Internal, "the stored order cannot be read")
	}
	if ev.EventType != orderCreated {
		return nil, status.Errorf(codes.AlreadyExists, "id %s is taken by a %s event", ev.ID, ev.EventType)
	}
	return &ordersv1.OrderMessage{Id: meta.ID, CustomerEmail: meta.CustomerEmail, Amount: meta.Amount,
		Status: meta.Status, Notes: meta.Notes, CreatedAt: meta.CreatedAt}, nil
}

// GetOrders streams the orders of the read model whose current status is
// req.status (every order when empty), oldest first.
func (o *orderService) GetOrders(req *ordersv1.GetOrdersRequest, stream ordersv1.OrderService_GetOrdersServer) error {
	ctx, cancel := context.WithTimeout(stream.Context(), o.s.cfg.UnaryTimeout)
	defer cancel()
	o.s.waitOrdersProjected(ctx)
	list, err := o.s.deps.Orders.List(ctx, req.GetStatus())
	if err != nil {
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
		return o.s.storeError(ctx, codes.Unavailable, "the orders read model", err)
	}
	for _, ord := range list {
		if err := stream.Send(orderMessage(ord)); err != nil {
			return err
		}
	}
	return nil
}

func orderMessage(o readmodel.Order) *ordersv1.OrderMessage {
	return &ordersv1.OrderMessage{Id: o.ID, CustomerEmail: o.CustomerEmail, Amount: o.Amount,
		Status: o.Status, Notes: o.Notes, CreatedAt: o.CreatedAt}
}
