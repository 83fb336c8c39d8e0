// Package metrics defines ingest's Prometheus collectors.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Ingest holds the collectors ingest updates on its hot path.
type Ingest struct {
	Accepted       prometheus.Counter
	Duplicates     prometheus.Counter
	Rejected       *prometheus.CounterVec
	PublishLatency prometheus.Histogram
	BatchSize      prometheus.Histogram
	// InDoubt counts writes whose ack timed out, by how they were settled.
	InDoubt *prometheus.CounterVec
	// Quarantined counts events kept in the REJECTIONS stream instead of
	// being stored.
	Quarantined prometheus.Counter
	// Refusals counts schema refusals by type and field.
	Refusals *Refusals
	// RecordFailed counts rejection records not stored, by outcome.
	RecordFailed *prometheus.CounterVec
}

// Rejection reasons, the values of the "reason" label.
const (
	ReasonInvalid      = "invalid"
	ReasonMalformed    = "malformed"
	ReasonTooLarge     = "too_large"
	ReasonMediaType    = "media_type"
	ReasonUnauthorized = "unauthorized"
	ReasonRateLimited  = "rate_limited"
	ReasonUnavailable  = "unavailable"
)

// NewIngest creates the collectors and registers them on reg.
func NewIngest(reg prometheus.Registerer) *Ingest {
	m := &Ingest{
		Accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kiln", Subsystem: "ingest", Name: "events_accepted_total",
			Help: "Events appended to the stream (not counting duplicates).",
		}),
		Duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kiln", Subsystem: "ingest", Name: "events_duplicate_total",
			Help: "Events answered as duplicates of an earlier event with the same id.",
		}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kiln", Subsystem: "ingest", Name: "events_rejected_total",
			Help: "Events or requests refused, by reason.",
		}, []string{"reason"}),
		PublishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kiln", Subsystem: "ingest", Name: "publish_seconds",
			Help:    "Time from publishing a request's events to the last JetStream ack.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kiln", Subsystem: "ingest", Name: "request_events",
			Help:    "Events per request.",
			Buckets: []float64{1, 2, 5, 10, 50, 100, 250, 500, 1000},
		}),
		InDoubt: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kiln", Subsystem: "ingest", Name: "in_doubt_total",
			Help: "Client-id writes whose ack timed out, by outcome: resolved (republished within the dedupe window and recorded in the id ledger), unresolved (the window passed), dropped (resolver queue full).",
		}, []string{"outcome"}),
	}
	m.Refusals = newRefusals()
	m.Quarantined = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "kiln", Subsystem: "ingest", Name: "events_quarantined_total",
		Help: "Events refused by their type's schema under enforcement quarantine and kept in the REJECTIONS stream (answered 202, not stored).",
	})
	m.RecordFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "kiln", Subsystem: "ingest", Name: "rejection_records_failed_total",
		Help: "Refused (rejected) or quarantined events whose record the REJECTIONS stream did not confirm; a quarantined one was answered 503.",
	}, []string{"outcome"})
	reg.MustRegister(m.Refusals.Collectors()...)
	reg.MustRegister(m.RecordFailed, m.Quarantined)
	reg.MustRegister(m.Accepted, m.Duplicates, m.Rejected, m.PublishLatency, m.BatchSize, m.InDoubt)
	for _, r := range []string{ReasonInvalid, ReasonMalformed, ReasonTooLarge, ReasonMediaType, ReasonUnauthorized, ReasonRateLimited, ReasonUnavailable} {
		m.Rejected.WithLabelValues(r)
	}
	return m
}
