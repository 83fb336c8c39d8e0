package grpcapi

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/kilnhq/kiln/httpserver"
)

type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s contextStream) Context() context.Context { return s.ctx }

// TestOpenStreamsGauge: kiln_grpc_streams counts a server stream while its
// handler runs, and is served at 0 before the first client.
func TestOpenStreamsGauge(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	g := newGuard(&httpserver.Access{Read: httpserver.NewKeys(), Ingest: httpserver.NewKeys()}, time.Second, reg,
		slog.New(slog.DiscardHandler))
	const subscribe = "/kiln.v1.EventService/Subscribe"
	open := g.streams.WithLabelValues(subscribe)
	require.Zero(t, testutil.ToFloat64(open))
	n, err := testutil.GatherAndCount(reg, "kiln_grpc_streams")
	require.NoError(t, err)
	require.Equal(t, 2, n, "Subscribe and ChatOrders, at 0")

	err = g.streamInterceptor(nil, contextStream{ctx: t.Context()}, &grpc.StreamServerInfo{FullMethod: subscribe},
		func(any, grpc.ServerStream) error {
			require.Equal(t, 1.0, testutil.ToFloat64(open), "open while the handler runs")
			return nil
		})
	require.NoError(t, err)
	require.Zero(t, testutil.ToFloat64(open), "closed when it returns")
}
