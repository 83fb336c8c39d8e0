package grpcapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ordersv1 "github.com/kilnhq/kiln/realtime/gen/orders/v1"
	"github.com/kilnhq/kiln/realtime/grpcapi"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// TestStoreErrorsStayOnTheServer: GetOrders against a Mongo that cannot be
// reached (mongodb://127.0.0.1:1) is UNAVAILABLE with Kiln's words, not the
// driver's error naming the address (the server logs that).
func TestStoreErrorsStayOnTheServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	js := testsupport.StartNATS(t).JetStream(t)
	_, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	require.NoError(t, err)
	conn := serveGRPC(ctx, t, js, grpcapi.Defaults())

	list, err := ordersv1.NewOrderServiceClient(conn).GetOrders(ctx, &ordersv1.GetOrdersRequest{})
	require.NoError(t, err)
	_, err = list.Recv()
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	msg := status.Convert(err).Message()
	for _, leak := range []string{"127.0.0.1", ":1", "mongodb", "server selection"} {
		require.NotContains(t, msg, leak)
	}
}
