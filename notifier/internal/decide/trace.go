package decide

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/notifier/internal/evaluate"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/telemetry"
)

// tracer is the consumer's tracer (the no-op one when none is set).
func (c *Consumer) tracer() trace.Tracer {
	return telemetry.Tracer(c.Tracer, "github.com/kilnhq/kiln/notifier")
}

// traceEvaluate starts the span of one event's evaluation, child of the
// span that appended it (carried in the message's headers).
func (c *Consumer) traceEvaluate(ctx context.Context, m jetstream.Msg, ev *schemas.Event, decisions int) (context.Context, trace.Span) {
	if !telemetry.Enabled(c.Tracer) {
		return ctx, trace.SpanFromContext(context.Background()) // a no-op span
	}
	return c.tracer().Start(telemetry.Extract(ctx, m.Headers()), "notify evaluate",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.consumer.group.name", Durable),
			attribute.String("kiln.event.id", ev.ID), attribute.Int("kiln.alert.decisions", decisions)))
}

// traceDecide is decide inside a span of its own; the jobs it queues carry
// that span's context to the delivery workers.
func (c *Consumer) traceDecide(ctx context.Context, ev *schemas.Event, d evaluate.Decision) error {
	ctx, span := c.tracer().Start(ctx, "notify decide "+d.Rule.Name,
		trace.WithAttributes(attribute.String("kiln.alert.id", d.AlertID), attribute.String("kiln.alert.rule", d.Rule.Name)))
	defer span.End()
	err := c.decide(ctx, ev, d)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}
