package grpcapi_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/realtime/feed"
	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
	"github.com/kilnhq/kiln/realtime/grpcapi"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// serveGRPC starts a server with cfg on a free port over js (the orders
// model's Mongo is never reachable) and returns a connection to it.
func serveGRPC(ctx context.Context, t *testing.T, js jetstream.JetStream, cfg grpcapi.Config) *grpc.ClientConn {
	t.Helper()
	return serveGRPCWith(ctx, t, js, cfg, unusedAppender{})
}

// serveGRPCWith is serveGRPC with the ingest path writes take.
func serveGRPCWith(ctx context.Context, t *testing.T, js jetstream.JetStream, cfg grpcapi.Config, appender grpcapi.Appender) *grpc.ClientConn {
	t.Helper()
	mc, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1").SetServerSelectionTimeout(time.Second))
	require.NoError(t, err)
	log := testsupport.Logger(t)
	cfg.Addr = "127.0.0.1:0"
	srv, err := grpcapi.New(cfg, grpcapi.Deps{Ingest: appender, Orders: readmodel.NewOrders(mc.Database("x")),
		JetStream: js, Feed: feed.New(js, log), Metrics: prometheus.NewRegistry(), Log: log})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	t.Cleanup(func() { stop(); <-served })
	return dial(t, ln.Addr().String())
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// subscribed opens a Subscribe replaying the stream from its start and
// waits for its first event: the server holds the stream open.
func subscribed(ctx context.Context, t *testing.T, client kilnv1.EventServiceClient) kilnv1.EventService_SubscribeClient {
	t.Helper()
	sub, err := client.Subscribe(ctx, &kilnv1.SubscribeRequest{Resume: true, SinceSeq: 0})
	require.NoError(t, err)
	_, err = sub.Recv()
	require.NoError(t, err)
	return sub
}

// TestSubscribeLimits: GRPC_MAX_SUBSCRIBES bounds the Subscribe streams of
// the process (over several connections): the one beyond is
// RESOURCE_EXHAUSTED naming the setting, and a new one is served once one
// closes. GRPC_MAX_CONCURRENT_STREAMS bounds the streams of one
// connection: grpc-go's client waits for one to close (here until its
// deadline) while another connection is served. GRPC_MAX_CONNECTIONS
// bounds the connections: one more is not served until one closes.
func TestSubscribeLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	js := testsupport.StartNATS(t).JetStream(t)
	_, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	require.NoError(t, err)
	publishN(ctx, t, js, 0, 4)

	t.Run("subscribes per process", func(t *testing.T) {
		cfg := grpcapi.Defaults()
		cfg.MaxSubscribes = 3
		conn := serveGRPC(ctx, t, js, cfg)
		other := dial(t, conn.Target())
		subCtx, cancelFirst := context.WithCancel(ctx)
		defer cancelFirst()
		subscribed(subCtx, t, kilnv1.NewEventServiceClient(conn))
		subscribed(ctx, t, kilnv1.NewEventServiceClient(conn))
		subscribed(ctx, t, kilnv1.NewEventServiceClient(other))

		sub, err := kilnv1.NewEventServiceClient(other).Subscribe(ctx, &kilnv1.SubscribeRequest{Resume: true})
		require.NoError(t, err)
		_, err = sub.Recv()
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		require.Contains(t, status.Convert(err).Message(), "GRPC_MAX_SUBSCRIBES")

		cancelFirst()
		require.Eventually(t, func() bool {
			sub, err := kilnv1.NewEventServiceClient(other).Subscribe(ctx, &kilnv1.SubscribeRequest{Resume: true})
			if err != nil {
				return false
			}
			_, err = sub.Recv()
			return err == nil
		}, time.Minute, 50*time.Millisecond, "a Subscribe is served once one closed")
	})

	t.Run("streams per connection", func(t *testing.T) {
		cfg := grpcapi.Defaults()
		cfg.MaxConcurrentStreams = 1
		conn := serveGRPC(ctx, t, js, cfg)
		subscribed(ctx, t, kilnv1.NewEventServiceClient(conn))
		// grpc-go's client learns the bound from the server's SETTINGS
		// frame (sent on connect, before the first call completes).
		waitCtx, cancelWait := context.WithTimeout(ctx, time.Second)
		defer cancelWait()
		sub, err := kilnv1.NewEventServiceClient(conn).Subscribe(waitCtx, &kilnv1.SubscribeRequest{Resume: true})
		if err == nil {
			_, err = sub.Recv()
		}
		require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
		subscribed(ctx, t, kilnv1.NewEventServiceClient(dial(t, conn.Target())))
	})

	t.Run("connections", func(t *testing.T) {
		cfg := grpcapi.Defaults()
		cfg.MaxConnections = 1
		first := serveGRPC(ctx, t, js, cfg)
		subscribed(ctx, t, kilnv1.NewEventServiceClient(first))
		// The listener does not accept a second connection while the
		// first is open: its call gets no answer before its deadline.
		second := dial(t, first.Target())
		waitCtx, cancelWait := context.WithTimeout(ctx, time.Second)
		defer cancelWait()
		sub, err := kilnv1.NewEventServiceClient(second).Subscribe(waitCtx, &kilnv1.SubscribeRequest{Resume: true})
		if err == nil {
			_, err = sub.Recv()
		}
		require.Contains(t, []codes.Code{codes.DeadlineExceeded, codes.Unavailable}, status.Code(err), "%v", err)
		require.NoError(t, first.Close())
		require.Eventually(t, func() bool {
			callCtx, cancelCall := context.WithTimeout(ctx, 5*time.Second)
			defer cancelCall()
			sub, err := kilnv1.NewEventServiceClient(second).Subscribe(callCtx, &kilnv1.SubscribeRequest{Resume: true})
			if err != nil {
				return false
			}
			_, err = sub.Recv()
			return err == nil
		}, 2*time.Minute, 100*time.Millisecond, "the second connection is served once the first closed")
	})
}
