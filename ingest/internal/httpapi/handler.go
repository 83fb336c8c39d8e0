// Package httpapi is ingest's HTTP surface: POST /events.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest/internal/deadletter"
	"github.com/kilnhq/kiln/ingest/internal/eventbody"
	"github.com/kilnhq/kiln/ingest/internal/metrics"
	"github.com/kilnhq/kiln/ingest/internal/publish"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/jsonscan"
	"github.com/kilnhq/kiln/schemas/problem"
	"github.com/kilnhq/kiln/schemas/rejections"
)

// envelopeOverhead is the size of a stored envelope without its strings
// and metadata (names, punctuation, two numbers of up to 20 digits and a
// schemaVersion), to size the encoding buffer.
const envelopeOverhead = 160

// maxIdempotencyKey leaves room for the "/<index>" suffix of batch items.
const maxIdempotencyKey = 120

// Publisher appends events; *publish.Publisher in production.
type Publisher interface {
	Publish(ctx context.Context, events []publish.Event) []publish.Result
}

// Handler serves POST /events.
type Handler struct {
	Normalizer *eventbody.Normalizer
	Publisher  Publisher
	Metrics    *metrics.Ingest
	MaxBatch   int
	// RetryAfter is the Retry-After, in seconds, sent with 503 answers.
	RetryAfter int
	Log        *slog.Logger
	// Rejections records refused and quarantined events; nil records
	// nothing (and quarantines nothing: such events are then refused).
	Rejections *deadletter.Recorder
	// Now is the clock of the records; nil is time.Now.
	Now func() time.Time
	// Tracer records a span per append (one JetStream publish of the
	// request's events); its context goes into every message's headers.
	// Nil when tracing is off: then not even a no-op span is made.
	Tracer trace.Tracer
}

// ItemResult is one entry of a batch answer.
type ItemResult struct {
	Index     int              `json:"index"`
	ID        string           `json:"id,omitempty"`
	Seq       uint64           `json:"seq,omitempty"`
	Duplicate bool             `json:"duplicate"`
	Error     *problem.Details `json:"error,omitempty"`
	// Quarantined: refused by its type's schema under enforcement
	// quarantine, and kept in the REJECTIONS stream (not stored).
	Quarantined bool          `json:"quarantined,omitempty"`
	valid       bool          // the item passed validation
	event       schemas.Event // the normalised event, when valid
	clientID    bool          // the id came from the client
	// refused is the record of an item refused by validation (its Error
	// is set) or quarantined, nil for the others.
	refused *rejections.Record
}

// BatchResponse answers a JSON-array or NDJSON body.
type BatchResponse struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Rejected   int `json:"rejected"`
	Failed     int `json:"failed"`
	// Quarantined is written only when not 0 (the old clients' shape).
	Quarantined int          `json:"quarantined,omitempty"`
	Results     []ItemResult `json:"results"`
}

// SingleResponse answers a single-object body (compat shape).
type SingleResponse struct {
	Accepted  bool   `json:"accepted"`
	ID        string `json:"id"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
	// Quarantined is written only when true.
	Quarantined bool `json:"quarantined,omitempty"`
}

// PostEvents handles POST /events.
func (h *Handler) PostEvents(c *fiber.Ctx) error {
	format, err := eventbody.FormatOf(c.Get(fiber.HeaderContentType))
	if err != nil {
		h.Metrics.Rejected.WithLabelValues(metrics.ReasonMediaType).Inc()
		return problem.New(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", err.Error())
	}
	key := c.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		return problem.Param("Idempotency-Key", "must be at most "+strconv.Itoa(maxIdempotencyKey)+" characters")
	}
	if !validKey(key) {
		// Two different invalid keys must not become one id.
		return problem.Param("Idempotency-Key", "must be valid UTF-8 text without control characters")
	}
	body, err := httpserver.Body(c)
	if err != nil {
		h.Metrics.Rejected.WithLabelValues(bodyReason(err)).Inc()
		return err
	}
	items, single, err := eventbody.Split(format, body, h.MaxBatch)
	switch {
	case errors.Is(err, eventbody.ErrTooMany):
		h.Metrics.Rejected.WithLabelValues(metrics.ReasonTooLarge).Inc()
		return problem.New(http.StatusRequestEntityTooLarge, "too-many-events", "Too many events", err.Error())
	case errors.Is(err, eventbody.ErrMalformed):
		h.Metrics.Rejected.WithLabelValues(metrics.ReasonMalformed).Inc()
		h.noteMalformed(body, err, rejections.KeyID(httpserver.RequestKey(c, false)))
		return problem.New(http.StatusBadRequest, "malformed-json", "Malformed JSON", err.Error())
	case err != nil:
		h.Metrics.Rejected.WithLabelValues(metrics.ReasonMalformed).Inc()
		return problem.New(http.StatusBadRequest, "empty-body", "No events", err.Error())
	}
	h.Metrics.BatchSize.Observe(float64(len(items)))

	results := h.normalize(items, key, single)
	if rights, ok := httpserver.RightsOf(c); ok {
		forbid(results, rights, single)
	}
	// A publish is bounded by its own timeout and must not be abandoned half-way
	// by a server shutdown: the client deserves the outcome of what was sent.
	ctx := context.WithoutCancel(c.UserContext())
	h.record(ctx, results, rejections.KeyID(httpserver.RequestKey(c, false)), single)
	h.publish(ctx, results)
	if single {
		return h.answerSingle(c, results[0])
	}
	return h.answerBatch(c, results)
}

// normalize validates every item and prepares the valid ones.
func (h *Handler) normalize(items []eventbody.Item, key string, single bool) []ItemResult {
	results := make([]ItemResult, len(items))
	var metadata []byte // the items' compacted metadata, one buffer for all
	for i := range items {
		it := &items[i]
		r := &results[i]
		r.Index = i
		var index *int
		if !single {
			index = &r.Index
		}
		if it.Err != nil {
			r.Error = problem.Invalid(it.Err.Error(), []problem.FieldError{{Index: index, Field: "", Message: it.Err.Error()}})
			if errors.Is(it.Err, eventbody.ErrMalformed) {
				r.refused = rejections.Malformed(it.Raw, it.Err.Error())
			}
			continue
		}
		fallback := key
		if key != "" && !single {
			fallback = key + "/" + strconv.Itoa(i)
		}
		if metadata == nil && it.Fields.MetadataKind != jsonscan.None {
			metadata = make([]byte, 0, len(it.Fields.Metadata)*(len(items)-i))
		}
		ev, clientID, errs, quarantine, grown := h.Normalizer.Normalize(it, fallback, metadata)
		metadata = grown
		if errs != nil {
			r.refused = &rejections.Record{EventType: it.Fields.EventType, ID: ev.ID, ClientID: clientID,
				Outcome: rejections.Rejected, Reasons: errs, SchemaVersion: ev.SchemaVersion, Body: it.Raw}
			if r.refused.ID == "" && it.Fields.ID != "" {
				r.refused.ID, r.refused.ClientID = it.Fields.ID, true
			}
			if quarantine && h.Rejections != nil {
				r.refused.Outcome, r.ID, r.Quarantined = rejections.Quarantined, ev.ID, true
				r.event.EventType = ev.EventType
				continue
			}
			r.Error = problem.Invalid("the event does not match its schema", problem.FromSchema(index, errs))
			continue
		}
		r.ID, r.valid, r.event, r.clientID = ev.ID, true, ev, clientID
	}
	return results
}

// forbid refuses, item by item, the events of types the request's
// credential may not write (a publishable key's other types): 403 naming
// eventType. The other items of a batch are kept, as invalid ones are.
func forbid(results []ItemResult, rights httpserver.Rights, single bool) {
	if rights.WriteAll {
		return
	}
	for i := range results {
		r := &results[i]
		if !r.valid && !r.Quarantined || rights.MayWrite(r.event.EventType) {
			continue
		}
		r.Quarantined, r.refused = false, nil // not this key's to keep
		var index *int
		if !single {
			index = &r.Index
		}
		msg := "this key may not write events of type " + strconv.Quote(r.event.EventType)
		r.Error = problem.New(http.StatusForbidden, "forbidden-event-type", "Event type not allowed", msg)
		r.Error.Errors = []problem.FieldError{{Index: index, Field: "eventType", Message: msg}}
		r.valid, r.ID = false, ""
	}
}

// publish appends the valid items and records each outcome in its result.
func (h *Handler) publish(ctx context.Context, results []ItemResult) {
	events := make([]publish.Event, 0, len(results))
	positions := make([]int, 0, len(results))
	// One buffer holds every stored envelope of the request. It is not
	// pooled: the client library may keep a message for a retry after
	// Publish returned.
	size := 0
	for i := range results {
		if ev := &results[i].event; results[i].valid {
			size += envelopeOverhead + len(ev.ID) + len(ev.EventType) + len(ev.UserID) + len(ev.Metadata)
		}
	}
	buf := make([]byte, 0, size)
	for i := range results {
		r := &results[i]
		if !r.valid {
			if !r.Quarantined && (r.Error == nil || r.Error.Status != http.StatusServiceUnavailable) {
				h.Metrics.Rejected.WithLabelValues(metrics.ReasonInvalid).Inc()
			}
			continue
		}
		start := len(buf)
		buf = eventbody.AppendEvent(buf, &r.event)
		data := buf[start:len(buf):len(buf)]
		events = append(events, publish.Event{
			ID: r.event.ID, Subject: schemas.Subject(r.event.EventType), UserID: r.event.UserID,
			Data: data, ClientID: r.clientID,
		})
		positions = append(positions, i)
	}
	if len(events) == 0 {
		return
	}
	span := trace.SpanFromContext(context.Background()) // a no-op span, no allocation
	if h.Tracer != nil {
		ctx, span = h.Tracer.Start(ctx, "append", trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(attribute.String("messaging.system", "nats"),
				attribute.String("messaging.destination.name", schemas.StreamName),
				attribute.Int("messaging.batch.message_count", len(events))))
		defer span.End()
	}
	start := time.Now()
	outcomes := h.Publisher.Publish(ctx, events)
	h.Metrics.PublishLatency.Observe(time.Since(start).Seconds())
	for k, out := range outcomes {
		r := &results[positions[k]]
		switch {
		case out.Err != nil:
			span.SetStatus(codes.Error, out.Err.Error())
			h.Log.Warn("publish failed", "id", r.ID, "err", out.Err)
			h.Metrics.Rejected.WithLabelValues(metrics.ReasonUnavailable).Inc()
			r.Error = problem.Unavailable("JetStream did not confirm the write in time; retry with the same id", h.RetryAfter)
		case out.Duplicate:
			h.Metrics.Duplicates.Inc()
			r.Seq, r.Duplicate = out.Seq, true
		default:
			h.Metrics.Accepted.Inc()
			r.Seq = out.Seq
		}
	}
}

// validKey reports whether an Idempotency-Key is valid UTF-8 without
// control characters.
func validKey(key string) bool {
	if !utf8.ValidString(key) {
		return false
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// bodyReason is the rejection reason of an httpserver.Body error.
func bodyReason(err error) string {
	var p *problem.Details
	if errors.As(err, &p) {
		switch p.Status {
		case http.StatusRequestEntityTooLarge:
			return metrics.ReasonTooLarge
		case http.StatusUnsupportedMediaType:
			return metrics.ReasonMediaType
		}
	}
	return metrics.ReasonMalformed
}
