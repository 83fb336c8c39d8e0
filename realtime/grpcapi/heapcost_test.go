package grpcapi_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
	"github.com/kilnhq/kiln/realtime/grpcapi"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// TestSubscribeHeapCost logs what one idle Subscribe stream costs in heap
// (server and client in this process; measured, not asserted): the basis
// of GRPC_MAX_SUBSCRIBES' default and the README's memory bound.
func TestSubscribeHeapCost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	js := testsupport.StartNATS(t).JetStream(t)
	_, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	require.NoError(t, err)
	publishN(ctx, t, js, 0, 1)
	conn := serveGRPC(ctx, t, js, grpcapi.Defaults())
	client := kilnv1.NewEventServiceClient(conn)
	subscribed(ctx, t, client)
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	before := heap()
	const n = 900
	for range n {
		subscribed(ctx, t, client)
	}
	after := heap()
	t.Logf("heap per idle Subscribe (server and client, GRPC_STREAM_BUFFER %d): %d bytes", grpcapi.Defaults().SubscribeBuffer, (int64(after)-int64(before))/n)
}
