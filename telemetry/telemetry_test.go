package telemetry_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/kilnhq/kiln/telemetry"
	"github.com/kilnhq/kiln/telemetry/otlpsink"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestNoEndpointStartsNoExporter(t *testing.T) {
	tp, shutdown, err := telemetry.Start(context.Background(), telemetry.Config{Protocol: telemetry.ProtocolGRPC, SampleRatio: 1}, quiet())
	require.NoError(t, err)
	require.IsType(t, noop.TracerProvider{}, tp, "tracing off must be the no-op provider: no SDK, no exporter")
	require.False(t, telemetry.Enabled(tp))
	_, span := tp.Tracer("t").Start(context.Background(), "x")
	require.False(t, span.SpanContext().IsValid())
	h := nats.Header{}
	telemetry.Inject(trace.ContextWithSpan(context.Background(), span), h)
	require.Empty(t, h, "no header is added when tracing is off")
	require.NoError(t, shutdown(context.Background()))
}

func TestExportsOverGRPCAndHTTPProtocols(t *testing.T) {
	sink, err := otlpsink.Start(otlpsink.Options{})
	require.NoError(t, err)
	t.Cleanup(sink.Close)
	for _, c := range []telemetry.Config{
		{Endpoint: sink.Endpoint(), Protocol: telemetry.ProtocolGRPC, SampleRatio: 1},
		{Endpoint: sink.HTTPEndpoint(), Protocol: telemetry.ProtocolHTTP, SampleRatio: 1},
	} {
		t.Run(c.Protocol, func(t *testing.T) { exportConnected(t, sink, c) })
	}
}

func exportConnected(t *testing.T, sink *otlpsink.Sink, cfg telemetry.Config) {
	before := len(sink.Spans())
	cfg = cfg.Named("kiln-test")
	tp, shutdown, err := telemetry.Start(context.Background(), cfg, quiet())
	require.NoError(t, err)
	require.IsType(t, &sdktrace.TracerProvider{}, tp)
	require.True(t, telemetry.Enabled(tp))

	ctx, parent := tp.Tracer("t").Start(context.Background(), "append")
	h := nats.Header{}
	telemetry.Inject(ctx, h)
	parent.End()
	require.NotEmpty(t, h.Get("traceparent"))
	_, child := tp.Tracer("t").Start(telemetry.Extract(context.Background(), h), "consume")
	child.End()
	require.Equal(t, parent.SpanContext().WithRemote(true), telemetry.SpanContext(h))

	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, shutdown(sctx), "shutdown flushes")
	spans := sink.Spans()[before:]
	require.Len(t, spans, 2)
	byName := map[string]otlpsink.Span{}
	for _, s := range spans {
		byName[s.Name] = s
		require.Equal(t, "kiln-test", s.Service)
	}
	require.Equal(t, byName["append"].TraceID, byName["consume"].TraceID)
	require.Equal(t, byName["append"].SpanID, byName["consume"].ParentID)
}

func TestValidate(t *testing.T) {
	for _, c := range []telemetry.Config{
		{Protocol: "udp", SampleRatio: 1},
		{Protocol: telemetry.ProtocolGRPC, SampleRatio: 2},
		{Protocol: telemetry.ProtocolGRPC, SampleRatio: 1, Endpoint: "127.0.0.1:4317"},
	} {
		require.Error(t, c.Validate(), "%+v", c)
	}
	require.NoError(t, telemetry.Config{Protocol: telemetry.ProtocolHTTP, SampleRatio: 0.5, Endpoint: "http://collector:4318"}.Validate())
}
