package telemetry

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Propagator returns the W3C trace context (traceparent, tracestate) that
// Kiln carries in HTTP, gRPC and NATS message headers. It is fixed rather
// than taken from otel's globals, as the TracerProvider is passed explicitly.
func Propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }

// HeaderCarrier is a propagation.TextMapCarrier over a NATS message's
// headers. Unlike http.Header, nats.Header keys are not canonicalised, so
// the lower-case W3C names are used as they are.
type HeaderCarrier nats.Header

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set sets key to value.
func (c HeaderCarrier) Set(key, value string) { c[key] = []string{value} }

// Keys lists the keys present.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes the trace context of ctx into h (nothing when ctx holds no
// sampled or remote span, so tracing off adds no header).
func Inject(ctx context.Context, h nats.Header) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagation.TraceContext{}.Inject(ctx, HeaderCarrier(h))
}

// Extract returns ctx with the remote span context carried in h, if any.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, HeaderCarrier(h))
}

// SpanContext is the span context carried in h (invalid when none), for
// links from a batch span to the messages it handles.
func SpanContext(h nats.Header) trace.SpanContext {
	if h == nil {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), HeaderCarrier(h)))
}

// Tracer returns tp's tracer for a Kiln package; a nil tp is the no-op one.
func Tracer(tp trace.TracerProvider, name string) trace.Tracer {
	if tp == nil {
		return noop.NewTracerProvider().Tracer(name)
	}
	return tp.Tracer(name)
}

// Enabled reports whether tp records spans: false for nil and the no-op
// provider, so instrumentation can skip its work when tracing is off.
func Enabled(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case nil, noop.TracerProvider:
		return false
	}
	return true
}
