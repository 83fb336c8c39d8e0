package standalone_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
	ordersv1 "github.com/kilnhq/kiln/realtime/gen/orders/v1"
)

func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return cc
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// listOrders collects GetOrders(status).
func listOrders(ctx context.Context, t *testing.T, c ordersv1.OrderServiceClient, st string) map[string]*ordersv1.OrderMessage {
	t.Helper()
	stream, err := c.GetOrders(ctx, &ordersv1.GetOrdersRequest{Status: st})
	require.NoError(t, err)
	out := map[string]*ordersv1.OrderMessage{}
	for {
		o, err := stream.Recv()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out[o.GetId()] = o
	}
}

func fieldViolations(t *testing.T, err error) map[string]string {
	t.Helper()
	st, ok := status.FromError(err)
	require.True(t, ok, err)
	require.Equal(t, codes.InvalidArgument, st.Code(), err)
	out := map[string]string{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out[v.GetField()] = v.GetDescription()
			}
		}
	}
	return out
}

func TestGRPCOrderService(t *testing.T) {
	// GetOrders waits for the projection of what was stored before it (a
	// generous bound for the loaded, -race CI machine), so the reads below
	// need no polling: read-your-writes, as the old server had.
	in := standalonetest.Start(t, t.TempDir(), "ORDERS_CATCH_UP_WAIT", "60s")
	ctx := testCtx(t)
	cc := dialGRPC(t, in.GRPCAddr)
	orders := ordersv1.NewOrderServiceClient(cc)

	t.Run("health and validation", func(t *testing.T) {
		h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: "orders.OrderService"})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus())

		_, err = orders.CreateOrder(ctx, &ordersv1.CreateOrderRequest{})
		require.Contains(t, fieldViolations(t, err), "order")
		_, err = orders.CreateOrder(ctx, &ordersv1.CreateOrderRequest{Order: &ordersv1.OrderMessage{Amount: -1}})
		v := fieldViolations(t, err)
		require.Contains(t, v, "order.customer_email")
		require.Contains(t, v, "order.amount")
		_, err = orders.CreateOrder(ctx, &ordersv1.CreateOrderRequest{Order: &ordersv1.OrderMessage{
			CustomerEmail: "not-an-email", Amount: 3}})
		require.Contains(t, fieldViolations(t, err), "order.customer_email", "the order.created schema's check")
	})

	t.Run("create, list, cancel over HTTP", func(t *testing.T) {
		created, err := orders.CreateOrder(ctx, &ordersv1.CreateOrderRequest{Order: &ordersv1.OrderMessage{
			CustomerEmail: "ada@example.com", Amount: 42.5, Notes: "gift"}})
		require.NoError(t, err)
		o := created.GetOrder()
		require.NotEmpty(t, o.GetId(), "a missing id is assigned")
		require.Equal(t, "created", o.GetStatus())
		_, err = time.Parse(time.RFC3339Nano, o.GetCreatedAt())
		require.NoError(t, err)

		again, err := orders.CreateOrder(ctx, &ordersv1.CreateOrderRequest{Order: &ordersv1.OrderMessage{
			Id: o.GetId(), CustomerEmail: "other@example.com", Amount: 1}})
		require.NoError(t, err)
		require.Equal(t, o.GetCustomerEmail(), again.GetOrder().GetCustomerEmail(), "the id is the idempotency key")

		got, ok := listOrders(ctx, t, orders, "")[o.GetId()]
		require.True(t, ok, "GetOrders right after CreateOrder streams the order")
		require.Equal(t, 42.5, got.GetAmount())
		require.Equal(t, "created", got.GetStatus())
		require.Equal(t, "gift", got.GetNotes())
		require.Equal(t, o.GetCreatedAt(), got.GetCreatedAt())

		body := fmt.Sprintf(`{"eventType":"order.canceled","userId":"ops","timestamp":%d,`+
			`"metadata":{"id":%q,"status":"canceled","reason":"customer asked","createdAt":%q}}`,
			time.Now().UnixMilli(), o.GetId(), time.Now().UTC().Format(time.RFC3339))
		resp, err := http.Post(in.Base+"/events", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		_, canceled := listOrders(ctx, t, orders, "canceled")[o.GetId()]
		require.True(t, canceled, "the cancel posted over HTTP changes the status GetOrders streams")
		_, open := listOrders(ctx, t, orders, "created")[o.GetId()]
		require.False(t, open, "a canceled order is not listed as created")
	})

	t.Run("two chat clients see each other in order", func(t *testing.T) {
		a, err := orders.ChatOrders(ctx)
		require.NoError(t, err)
		b, err := orders.ChatOrders(ctx)
		require.NoError(t, err)
		// Both streams are open once the server answers on them: a first
		// message from each, acknowledged, proves it.
		require.NoError(t, a.Send(&ordersv1.OrderChatMessage{Author: "alice", Text: "hello", OrderId: "o1"}))
		require.NoError(t, b.Send(&ordersv1.OrderChatMessage{Author: "bob", Text: "hi", OrderId: "o1"}))
		const n = 10
		for i := range n {
			require.NoError(t, a.Send(&ordersv1.OrderChatMessage{Author: "alice", Text: fmt.Sprint("a", i), OrderId: "o1"}))
			require.NoError(t, b.Send(&ordersv1.OrderChatMessage{Author: "bob", Text: fmt.Sprint("b", i), OrderId: "o1"}))
		}
		require.NoError(t, a.CloseSend())
		seen := func(s ordersv1.OrderService_ChatOrdersClient) (acks, chat []string) {
			for len(acks) < n+1 || countPrefix(chat, "b") < n || countPrefix(chat, "a") < n {
				m, err := s.Recv()
				require.NoError(t, err)
				if m.GetAuthor() == "server" {
					acks = append(acks, m.GetText())
					require.Equal(t, "o1", m.GetOrderId())
					continue
				}
				if m.GetText() != "hello" && m.GetText() != "hi" {
					chat = append(chat, m.GetText())
				}
			}
			return acks, chat
		}
		bAcks, bChat := seen(b)
		require.Equal(t, "Ack: hi", bAcks[0])
		require.Equal(t, "Ack: b0", bAcks[1])
		require.Equal(t, inOrder(bChat, "a", n), true, bChat)
		require.Equal(t, inOrder(bChat, "b", n), true, bChat)
	})
}

func countPrefix(xs []string, p string) int {
	n := 0
	for _, x := range xs {
		if strings.HasPrefix(x, p) {
			n++
		}
	}
	return n
}

// inOrder reports whether the messages with prefix p are p0..p(n-1), once each, in order.
func inOrder(xs []string, p string, n int) bool {
	i := 0
	for _, x := range xs {
		if strings.HasPrefix(x, p) {
			if x != fmt.Sprint(p, i) {
				return false
			}
			i++
		}
	}
	return i == n
}

func TestGRPCEventServiceResumesWithoutGapOrDuplicate(t *testing.T) {
	in := standalonetest.Start(t, t.TempDir())
	ctx := testCtx(t)
	events := kilnv1.NewEventServiceClient(dialGRPC(t, in.GRPCAddr))

	publish := func(from, to int) {
		var batch []*kilnv1.Event
		for i := from; i < to; i++ {
			batch = append(batch, &kilnv1.Event{Id: fmt.Sprintf("ev-%03d", i), EventType: "sub.test", UserId: "u1",
				Timestamp: float64(time.Now().UnixMilli()), MetadataJson: fmt.Sprintf(`{"n":%d}`, i)})
		}
		resp, err := events.Publish(ctx, &kilnv1.PublishRequest{Events: batch})
		require.NoError(t, err)
		require.EqualValues(t, to-from, resp.GetAccepted(), resp)
	}
	publish(0, 30)

	// Per-item results: a duplicate, an invalid item, a good one.
	resp, err := events.Publish(ctx, &kilnv1.PublishRequest{Events: []*kilnv1.Event{
		{Id: "ev-000", EventType: "sub.test", UserId: "u1", Timestamp: 1},
		{EventType: "sub.test", Timestamp: 1},
		{Id: "other-1", EventType: "other", UserId: "u2", Timestamp: 1},
	}})
	require.NoError(t, err)
	require.True(t, resp.Results[0].GetDuplicate())
	require.NotEmpty(t, resp.Results[1].GetError())
	require.Equal(t, "user_id", resp.Results[1].GetFieldErrors()[0].GetField())
	require.NotZero(t, resp.Results[2].GetSeq())
	require.EqualValues(t, 1, resp.GetAccepted())

	var got []string
	var last uint64
	read := func(sub kilnv1.EventService_SubscribeClient, n int) {
		for range n {
			ev, err := sub.Recv()
			require.NoError(t, err)
			require.Greater(t, ev.GetSeq(), last, "stream order")
			last = ev.GetSeq()
			got = append(got, ev.GetId())
		}
	}
	first, cancelFirst := context.WithCancel(ctx)
	sub, err := events.Subscribe(first, &kilnv1.SubscribeRequest{Types: []string{"sub.*"}, UserId: "u1", Resume: true})
	require.NoError(t, err)
	read(sub, 20)
	cancelFirst() // disconnect mid-way
	publish(30, 40)

	sub, err = events.Subscribe(ctx, &kilnv1.SubscribeRequest{Types: []string{"sub.>"}, SinceSeq: last, Resume: true})
	require.NoError(t, err)
	read(sub, 20)
	publish(40, 45) // live, after the catch-up
	read(sub, 5)
	want := make([]string, 45)
	for i := range want {
		want[i] = fmt.Sprintf("ev-%03d", i)
	}
	require.Equal(t, want, got, "no gap, no duplicate, other types and users filtered out")

	_, err = mustStream(events.Subscribe(ctx, &kilnv1.SubscribeRequest{Types: []string{"bad type"}}))
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

func mustStream(s kilnv1.EventService_SubscribeClient, err error) (*kilnv1.Event, error) {
	if err != nil {
		return nil, err
	}
	return s.Recv()
}

func TestGRPCNeedsTheHTTPKeys(t *testing.T) {
	in := standalonetest.Start(t, t.TempDir(), "KILN_INGEST_KEYS", "writer", "KILN_READ_KEYS", "reader",
		"KILN_ADMIN_KEYS", "admin")
	ctx := testCtx(t)
	cc := dialGRPC(t, in.GRPCAddr)
	orders := ordersv1.NewOrderServiceClient(cc)
	order := &ordersv1.CreateOrderRequest{Order: &ordersv1.OrderMessage{CustomerEmail: "a@example.com", Amount: 1}}

	_, err := orders.CreateOrder(ctx, order)
	require.Equal(t, codes.Unauthenticated, status.Code(err), err)
	_, err = orders.CreateOrder(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer reader"), order)
	require.Equal(t, codes.Unauthenticated, status.Code(err), "a read key cannot write")
	_, err = orders.CreateOrder(metadata.AppendToOutgoingContext(ctx, "x-api-key", "writer"), order)
	require.NoError(t, err)

	_, err = mustOrder(orders.GetOrders(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer writer"), &ordersv1.GetOrdersRequest{}))
	require.Equal(t, codes.Unauthenticated, status.Code(err), "an ingest key cannot read")
	_, err = mustOrder(orders.GetOrders(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer reader"), &ordersv1.GetOrdersRequest{}))
	if err != io.EOF { // no order projected yet is fine too
		require.NoError(t, err)
	}
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "health is open")
}

func mustOrder(s ordersv1.OrderService_GetOrdersClient, err error) (*ordersv1.OrderMessage, error) {
	if err != nil {
		return nil, err
	}
	return s.Recv()
}
