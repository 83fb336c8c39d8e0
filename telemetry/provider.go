package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Shutdown flushes the spans still buffered and stops the exporter.
type Shutdown func(context.Context) error

// Start returns the TracerProvider cfg asks for and its shutdown. Tracing
// off (no endpoint): a no-op provider, no exporter, a shutdown that does
// nothing. On: spans batched and exported over OTLP; call shutdown on exit
// so the last ones are sent.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (trace.TracerProvider, Shutdown, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("telemetry: %w", err)
	}
	if !cfg.Enabled() {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exp, err := newExporter(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: otlp exporter %s: %w", cfg.Endpoint, err)
	}
	res := resource.NewSchemaless(semconv.ServiceName(cfg.ServiceName))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	log.Info("tracing on", "endpoint", cfg.Endpoint, "protocol", cfg.Protocol, "service", cfg.ServiceName, "sample_ratio", cfg.SampleRatio)
	return tp, func(ctx context.Context) error {
		if err := tp.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("telemetry: flush spans: %w", err)
		}
		return nil
	}, nil
}

// newExporter makes the OTLP exporter of cfg.Protocol. The endpoint is the
// generic OTEL_EXPORTER_OTLP_ENDPOINT, so over HTTP the signal's path
// /v1/traces is appended to it, as the OpenTelemetry spec says.
func newExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	if cfg.Protocol == ProtocolHTTP {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("parse endpoint: %w", err)
		}
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
		return otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u.String()))
	}
	return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
}

// flushTimeout bounds the last export on shutdown.
const flushTimeout = 5 * time.Second

// Flush runs the shutdown with a fresh deadline (the service's context is
// usually done by then) and logs a failure, for a deferred call in Run.
func (s Shutdown) Flush(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	if err := s(ctx); err != nil {
		log.Warn("tracing: last spans not exported", "err", err)
	}
}
