// Package metrics defines the projector's Prometheus collectors.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Projector holds the collectors, labelled by projection.
type Projector struct {
	applied     *prometheus.CounterVec
	batch       *prometheus.HistogramVec
	redelivered *prometheus.CounterVec
	poisoned    *prometheus.CounterVec
	storeErrors *prometheus.CounterVec
	stalled     *prometheus.GaugeVec
	LagMessages *prometheus.GaugeVec
	LagSeconds  *prometheus.GaugeVec
	Checkpoint  *prometheus.GaugeVec
	// FailoverRestored counts events whose effect a promoted Redis
	// replica lacked, restored from the stream (projector/failover.go).
	FailoverRestored *prometheus.CounterVec
}

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer) *Projector {
	label := []string{"projection"}
	m := &Projector{
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kiln", Subsystem: "projector",
			Name: "events_applied_total", Help: "Events applied and acked."}, label),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "kiln", Subsystem: "projector",
			Name: "batch_seconds", Help: "Time to apply and ack one batch.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, label),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kiln", Subsystem: "projector",
			Name: "redeliveries_total", Help: "Messages received more than once."}, label),
		poisoned: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kiln", Subsystem: "projector",
			Name: "poison_total", Help: "Messages recorded in projection_errors and skipped."}, label),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kiln", Subsystem: "projector",
			Name: "store_errors_total", Help: "Failed attempts to write to the projection's store (each retried until it answers)."}, label),
		stalled: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "kiln", Subsystem: "projector",
			Name: "stalled", Help: "1 while the projection waits for its store to answer, else 0."}, label),
		LagMessages: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "kiln", Subsystem: "projector",
			Name: "lag_messages", Help: "Messages in the stream not yet applied (pending + unacked)."}, label),
		LagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "kiln", Subsystem: "projector",
			Name: "lag_seconds", Help: "Age of the oldest message not yet applied (0 when caught up)."}, label),
		Checkpoint: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "kiln", Subsystem: "projector",
			Name: "checkpoint_seq", Help: "Last contiguous stream sequence applied."}, label),
		FailoverRestored: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kiln", Subsystem: "projector",
			Name: "failover_restored_total", Help: "Events acked whose effect a promoted Redis replica lacked, restored from the stream."}, label),
	}
	reg.MustRegister(m.applied, m.batch, m.redelivered, m.poisoned, m.storeErrors, m.stalled, m.LagMessages, m.LagSeconds, m.Checkpoint, m.FailoverRestored)
	return m
}

// For returns the observer of one projection.
func (m *Projector) For(projection string) Observer {
	// Every series of the projection exists from the start at 0, so an
	// alert on increase() sees its first poison message or store error.
	m.applied.WithLabelValues(projection)
	m.batch.WithLabelValues(projection)
	m.redelivered.WithLabelValues(projection)
	m.poisoned.WithLabelValues(projection)
	m.storeErrors.WithLabelValues(projection)
	m.stalled.WithLabelValues(projection).Set(0)
	m.FailoverRestored.WithLabelValues(projection)
	return Observer{m: m, name: projection}
}

// Observer records one projection's loop events.
type Observer struct {
	m    *Projector
	name string
}

// Batch records an applied batch.
func (o Observer) Batch(size int, d time.Duration) {
	o.m.applied.WithLabelValues(o.name).Add(float64(size))
	o.m.batch.WithLabelValues(o.name).Observe(d.Seconds())
}

// Redelivered records redelivered messages.
func (o Observer) Redelivered(n int) { o.m.redelivered.WithLabelValues(o.name).Add(float64(n)) }

// Poisoned records a skipped message.
func (o Observer) Poisoned() { o.m.poisoned.WithLabelValues(o.name).Inc() }

// StoreError records a failed store write.
func (o Observer) StoreError() { o.m.storeErrors.WithLabelValues(o.name).Inc() }

// Stalled records whether the projection waits for its store.
func (o Observer) Stalled(on bool) {
	v := 0.0
	if on {
		v = 1
	}
	o.m.stalled.WithLabelValues(o.name).Set(v)
}
