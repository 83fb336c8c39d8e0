package grpcapi

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/kilnhq/kiln/telemetry"
)

// serverTracing is the otelgrpc stats handler (a span per call, child of
// the caller's W3C traceparent metadata) when tracing is on; nothing
// otherwise.
func serverTracing(tp trace.TracerProvider) grpc.ServerOption {
	if !telemetry.Enabled(tp) {
		return grpc.EmptyServerOption{}
	}
	return grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(telemetry.Propagator())))
}
