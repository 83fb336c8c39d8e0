// Package metrics defines the notifier's Prometheus collectors.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Delivery outcomes.
const (
	Sent    = "sent"    // the channel accepted the alert
	Retry   = "retry"   // an attempt failed; another is scheduled
	Dead    = "dead"    // moved to ALERTS_DLQ
	Skipped = "skipped" // a job for a delivery already sent: nothing sent
)

// Notifier holds the collectors.
type Notifier struct {
	Evaluated  prometheus.Counter
	Poison     prometheus.Counter
	Decided    *prometheus.CounterVec // by rule
	Suppressed *prometheus.CounterVec // by rule
	Deliveries *prometheus.CounterVec // by channel and outcome
	DLQ        prometheus.Gauge
	Windows    prometheus.Gauge
	Rebuilt    prometheus.Counter
	// LagMessages and LagSeconds are the notifier consumer's lag, named
	// like the projector's: events not yet evaluated and acked, and the
	// age of the oldest of them (0 when caught up).
	LagMessages prometheus.Gauge
	LagSeconds  prometheus.Gauge
	// Active is 1 while this process holds the lease and evaluates
	// events, 0 while it stands by.
	Active prometheus.Gauge
}

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer) *Notifier {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "kiln", Subsystem: "notifier", Name: name, Help: help}
	}
	m := &Notifier{
		Evaluated: prometheus.NewCounter(prometheus.CounterOpts(opts("events_evaluated_total",
			"Live events of the notifier consumer evaluated against the rules and acked."))),
		Poison: prometheus.NewCounter(prometheus.CounterOpts(opts("poison_total",
			"Undecodable messages on the notifier consumer, terminated."))),
		Decided: prometheus.NewCounterVec(prometheus.CounterOpts(opts("alerts_decided_total",
			"Alerts decided (stored once and queued for delivery).")), []string{"rule"}),
		Suppressed: prometheus.NewCounterVec(prometheus.CounterOpts(opts("alerts_suppressed_total",
			"Alerts a rule would have decided but its throttle suppressed.")), []string{"rule"}),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts(opts("deliveries_total",
			"Delivery attempts by channel and outcome (sent, retry, dead, skipped).")), []string{"channel", "outcome"}),
		DLQ: prometheus.NewGauge(prometheus.GaugeOpts(opts("dlq_messages",
			"Dead letters waiting in ALERTS_DLQ."))),
		Windows: prometheus.NewGauge(prometheus.GaugeOpts(opts("threshold_windows",
			"Threshold windows held in memory."))),
		Rebuilt: prometheus.NewCounter(prometheus.CounterOpts(opts("rebuild_events_total",
			"Events observed at start-up to rebuild threshold windows."))),
		LagMessages: prometheus.NewGauge(prometheus.GaugeOpts(opts("lag_messages",
			"Events in the stream the notifier has not yet evaluated and acked (pending + unacked)."))),
		LagSeconds: prometheus.NewGauge(prometheus.GaugeOpts(opts("lag_seconds",
			"Age of the oldest event the notifier has not yet acked (0 when caught up)."))),
		Active: prometheus.NewGauge(prometheus.GaugeOpts(opts("active",
			"1 while this notifier process holds the lease and evaluates events and delivers alerts, 0 while it stands by."))),
	}
	reg.MustRegister(m.Evaluated, m.Poison, m.Decided, m.Suppressed, m.Deliveries, m.DLQ, m.Windows, m.Rebuilt,
		m.LagMessages, m.LagSeconds, m.Active)
	return m
}
