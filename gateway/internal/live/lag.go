package live

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/telemetry"
)

// noteSeq records seq as the last sequence the fan-out received.
func (h *Hub) noteSeq(seq uint64) {
	h.fanned.Store(seq)
	h.opts.Metrics.LastSeq(seq)
}

// watchLag sets the lag gauges: the events stored after the last one the
// fan-out received, and the age of the oldest of them (0 when caught up).
// It reads no hub lock, so a fan-out that is stuck still shows its lag.
func (h *Hub) watchLag(ctx context.Context) {
	wctx, cancel := context.WithTimeout(ctx, max(h.opts.LagInterval, time.Second))
	defer cancel()
	st, err := h.opts.JetStream.Stream(wctx, schemas.StreamName)
	if err != nil {
		return // NATS away: keep the last values
	}
	last, fanned := st.CachedInfo().State.LastSeq, h.fanned.Load()
	if last <= fanned {
		h.opts.Metrics.Lag(0, 0)
		return
	}
	seconds := 0.0
	if oldest, err := st.GetMsg(wctx, fanned+1); err == nil {
		seconds = max(0, time.Since(oldest.Time).Seconds())
	}
	h.opts.Metrics.Lag(last-fanned, seconds)
}

// traceFanOut starts the span of one event's fan-out (one per event, not
// per client), child of the span that appended it; a no-op span when
// tracing is off.
func (h *Hub) traceFanOut(msg jetstream.Msg, seq uint64) trace.Span {
	if !telemetry.Enabled(h.opts.Tracer) {
		return trace.SpanFromContext(context.Background())
	}
	_, span := telemetry.Tracer(h.opts.Tracer, "github.com/kilnhq/kiln/gateway/live").Start(
		telemetry.Extract(context.Background(), msg.Headers()), "live fan-out",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.Int64("messaging.message.sequence", int64(seq))))
	return span
}
