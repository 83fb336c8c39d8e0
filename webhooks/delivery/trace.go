package delivery

import (
	"context"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/telemetry"
	"github.com/kilnhq/kiln/webhooks/endpoint"
)

// send is one delivery attempt inside a "webhook dispatch" span, child of
// the event's append span that the job carries.
func (w *Worker) send(ctx context.Context, m jetstream.Msg, ep *endpoint.Endpoint, job *Job, attempt int) Attempt {
	if !telemetry.Enabled(w.Tracer) {
		return w.Sender.Send(ctx, ep, job.WebhookID, job.Body)
	}
	ctx, span := telemetry.Tracer(w.Tracer, "github.com/kilnhq/kiln/webhooks").Start(
		telemetry.Extract(ctx, m.Headers()), "webhook dispatch", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("kiln.webhook.id", job.WebhookID),
			attribute.String("kiln.webhook.endpoint", ep.ID), attribute.Int("kiln.webhook.attempt", attempt)))
	defer span.End()
	a := w.Sender.Send(ctx, ep, job.WebhookID, job.Body)
	span.SetAttributes(attribute.Int("http.response.status_code", a.Status))
	if !a.OK() {
		span.SetStatus(codes.Error, "status "+strconv.Itoa(a.Status)+" "+a.Error)
	}
	return a
}
