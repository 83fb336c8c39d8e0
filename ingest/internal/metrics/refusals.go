package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnhq/kiln/schemas"
)

// Label caps of the refusal counter: its cardinality stays bounded
// whatever the events sent.
const (
	// MaxRefusalTypes is the most event types named; others are "other".
	MaxRefusalTypes = 200
	// MaxRefusalFields is the most fields named per type; others are
	// "other".
	MaxRefusalFields = 50
	// Other is the label value past a cap.
	Other = "other"
)

// Refusals counts schema refusals by event type, field and outcome
// (rejected | quarantined), with bounded label values: field errors
// (an event failing two fields counts in both) and refused events.
type Refusals struct {
	vec *prometheus.CounterVec
	// events counts refused events by type and outcome (one per event).
	events *prometheus.CounterVec
	mu     sync.Mutex
	// seen holds the named fields of each named type.
	seen map[string]map[string]struct{}
}

func newRefusals() *Refusals {
	return &Refusals{
		vec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kiln", Subsystem: "ingest", Name: "schema_refusals_total",
			Help: "Field errors of events refused or quarantined by schema validation, by event type, field and outcome " +
				"(at most 200 types and 50 fields per type are named; the rest are \"other\").",
		}, []string{"type", "field", "outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kiln", Subsystem: "ingest", Name: "schema_refused_events_total",
			Help: "Events refused or quarantined by schema validation (or refused by the envelope), by event type and outcome, " +
				"one per event whatever its number of field errors (at most 200 types are named; the rest are \"other\").",
		}, []string{"type", "outcome"}),
		seen: map[string]map[string]struct{}{},
	}
}

// Collectors are the counters to register.
func (r *Refusals) Collectors() []prometheus.Collector {
	return []prometheus.Collector{r.vec, r.events}
}

// Add counts one refused event and its field errors.
func (r *Refusals) Add(eventType, outcome string, errs []schemas.FieldError) {
	r.mu.Lock()
	defer r.mu.Unlock()
	typ := eventType
	fields, ok := r.seen[typ]
	if !ok {
		if !schemas.ValidEventType(typ) || len(r.seen) >= MaxRefusalTypes {
			typ, fields = Other, r.seen[Other]
		}
		if fields == nil {
			fields = map[string]struct{}{}
			r.seen[typ] = fields
		}
	}
	r.events.WithLabelValues(typ, outcome).Inc()
	for _, e := range errs {
		field := e.Field
		if _, ok := fields[field]; !ok {
			if len(fields) >= MaxRefusalFields {
				field = Other
			} else {
				fields[field] = struct{}{}
			}
		}
		r.vec.WithLabelValues(typ, field, outcome).Inc()
	}
}
