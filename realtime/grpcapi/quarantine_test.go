package grpcapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/ingest"
	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
	ordersv1 "github.com/kilnhq/kiln/realtime/gen/orders/v1"
	"github.com/kilnhq/kiln/realtime/grpcapi"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/rejections"
	"github.com/kilnhq/kiln/testsupport"
)

// Issue 24: an event quarantined by its type's schema is reported as such
// over gRPC, as POST /events answers "quarantined":true: Publish in the
// result's quarantined field (and the response's quarantined count, not
// accepted), CreateOrder with the kiln-quarantined response header and the
// order as sent (not Unavailable: there is no stored event to read back).
func TestPublishAndCreateOrderSayQuarantined(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	icfg, err := ingest.LoadConfig(map[string]string{"NATS_URL": ns.URL(), "SCHEMAS_ENFORCEMENT": "quarantine"})
	require.NoError(t, err)
	log := testsupport.Logger(t)
	nc, err := connect.NATS(ns.URL(), t.Name(), connect.Append, log)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	svc, err := ingest.New(ctx, icfg, ingest.Deps{NATS: nc, Metrics: prometheus.NewRegistry(), Log: log})
	require.NoError(t, err)
	conn := serveGRPCWith(ctx, t, js, grpcapi.Defaults(), svc)

	const goodMeta = `{"id":"o1","status":"new","amount":5,"currency":"EUR","customerEmail":"a@b.co","createdAt":1}`
	const badMeta = `{"id":"o2","status":"new","amount":-5,"currency":"EUR","customerEmail":"a@b.co","createdAt":1}`
	resp, err := kilnv1.NewEventServiceClient(conn).Publish(ctx, &kilnv1.PublishRequest{Events: []*kilnv1.Event{
		{Id: "ok-1", EventType: "order.created", UserId: "u", Timestamp: 1700000000000, MetadataJson: goodMeta},
		{Id: "q-1", EventType: "order.created", UserId: "u", Timestamp: 1700000000000, MetadataJson: badMeta},
		{EventType: "order.created", Timestamp: 1700000000000}, // no userId: the envelope refuses it
	}})
	require.NoError(t, err)
	res := resp.GetResults()
	require.Len(t, res, 3)
	require.False(t, res[0].GetQuarantined())
	require.NotZero(t, res[0].GetSeq())
	require.True(t, res[1].GetQuarantined(), "%v", res[1])
	require.Equal(t, "q-1", res[1].GetId())
	require.Zero(t, res[1].GetSeq())
	require.Empty(t, res[1].GetError())
	require.False(t, res[2].GetQuarantined())
	require.NotEmpty(t, res[2].GetError())
	require.EqualValues(t, 1, resp.GetAccepted())
	require.EqualValues(t, 1, resp.GetQuarantined())
	require.EqualValues(t, 1, resp.GetRejected())

	// An order the schema refuses (not an email: CreateOrder checks only
	// that it is there) is quarantined under its order id.
	var header metadata.MD
	created, err := ordersv1.NewOrderServiceClient(conn).CreateOrder(ctx, &ordersv1.CreateOrderRequest{
		Order: &ordersv1.OrderMessage{Id: "order-q", CustomerEmail: "not an email", Amount: 3}}, grpc.Header(&header))
	require.NoError(t, err)
	require.Equal(t, []string{"true"}, header.Get(grpcapi.QuarantinedHeader))
	require.Equal(t, "order-q", created.GetOrder().GetId())
	require.Equal(t, "created", created.GetOrder().GetStatus())
	require.EqualValues(t, 3, created.GetOrder().GetAmount())

	header = nil
	created, err = ordersv1.NewOrderServiceClient(conn).CreateOrder(ctx, &ordersv1.CreateOrderRequest{
		Order: &ordersv1.OrderMessage{Id: "order-ok", CustomerEmail: "a@b.co", Amount: 3}}, grpc.Header(&header))
	require.NoError(t, err)
	require.Empty(t, header.Get(grpcapi.QuarantinedHeader))
	require.Equal(t, "order-ok", created.GetOrder().GetId())

	stream, err := js.Stream(ctx, schemas.StreamName)
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, info.State.Msgs, "ok-1 and order-ok stored, nothing quarantined")
	var kept []string
	require.NoError(t, rejections.Each(ctx, js, rejections.Query{}, func(r rejections.Record) error {
		if r.Outcome == rejections.Quarantined {
			kept = append(kept, r.ID)
		}
		return nil
	}))
	require.Equal(t, []string{"q-1", "order-q"}, kept)
}
