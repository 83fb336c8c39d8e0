package consume

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/telemetry"
)

// batchTrace is the spans of one batch: a span for the batch, linked to
// every message's trace, and a span per message whose parent is the
// message's own context (its append span), so each event's trace shows
// its projection and the batch span shows what was projected together.
type batchTrace struct {
	batch trace.Span
	each  []trace.Span
}

// traceBatch starts the spans of msgs; nil (no work) when tracing is off.
func (s Spec) traceBatch(ctx context.Context, msgs []jetstream.Msg) *batchTrace {
	if !telemetry.Enabled(s.Tracer) {
		return nil
	}
	tracer := s.Tracer.Tracer("github.com/kilnhq/kiln/projector")
	links := make([]trace.Link, 0, len(msgs))
	for _, m := range msgs {
		if sc := telemetry.SpanContext(m.Headers()); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.consumer.group.name", s.Durable),
		attribute.Int("messaging.batch.message_count", len(msgs)),
	}
	_, batch := tracer.Start(ctx, "project batch "+s.Durable, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...), trace.WithAttributes(attrs...))
	bt := &batchTrace{batch: batch, each: make([]trace.Span, 0, len(msgs))}
	batchLink := trace.Link{SpanContext: batch.SpanContext()}
	for _, m := range msgs {
		mctx := telemetry.Extract(ctx, m.Headers())
		if !trace.SpanContextFromContext(mctx).IsValid() {
			continue
		}
		_, sp := tracer.Start(mctx, "project "+s.Durable, trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithLinks(batchLink), trace.WithAttributes(attrs...))
		bt.each = append(bt.each, sp)
	}
	return bt
}

// end ends the spans, marking them failed when err is not nil.
func (bt *batchTrace) end(err error) {
	if bt == nil {
		return
	}
	for _, sp := range append(bt.each, bt.batch) {
		if err != nil {
			sp.SetStatus(codes.Error, err.Error())
		}
		sp.End()
	}
}
