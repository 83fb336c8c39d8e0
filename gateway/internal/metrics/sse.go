package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Frame kinds of kiln_gateway_sse_frames_total.
const (
	FrameEvent     = "event"
	FrameMetrics   = "metrics"
	FrameHeartbeat = "heartbeat"
	FrameAlert     = "alert"
	// FrameSnapshot counts the compat snapshot frames
	// ({timestamp,total,recent}).
	FrameSnapshot = "snapshot"
	// FrameControl counts the connected, reset and error frames.
	FrameControl = "control"
)

// Reasons of kiln_gateway_sse_drops_total: why the server ended a stream.
const (
	DropSlowConsumer = "slow_consumer"
	DropReplayError  = "replay_error"
	DropShutdown     = "shutdown"
)

// SSE holds the live stream's collectors (GET /stream).
type SSE struct {
	clients prometheus.Gauge
	frames  *prometheus.CounterVec
	drops   *prometheus.CounterVec
	lastSeq prometheus.Gauge
	// lagMessages and lagSeconds are the live fan-out's lag, named like
	// the projector's and the notifier's.
	lagMessages prometheus.Gauge
	lagSeconds  prometheus.Gauge
}

// NewSSE creates the live stream's collectors and registers them on reg.
func NewSSE(reg prometheus.Registerer) (*SSE, error) {
	m := &SSE{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kiln", Subsystem: "gateway", Name: "sse_clients",
			Help: "Open GET /stream connections.",
		}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kiln", Subsystem: "gateway", Name: "sse_frames_total",
			Help: "Frames written to GET /stream clients, by kind (event, alert, metrics, snapshot, heartbeat, control).",
		}, []string{"kind"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kiln", Subsystem: "gateway", Name: "sse_drops_total",
			Help: "GET /stream connections the server ended, by reason (slow_consumer, replay_error, shutdown).",
		}, []string{"reason"}),
		lastSeq: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kiln", Subsystem: "gateway", Name: "sse_hub_last_seq",
			Help: "Stream sequence of the last event the live fan-out received.",
		}),
		lagMessages: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kiln", Subsystem: "gateway", Name: "sse_lag_messages",
			Help: "Events in the stream the live fan-out has not yet received.",
		}),
		lagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kiln", Subsystem: "gateway", Name: "sse_lag_seconds",
			Help: "Age of the oldest event the live fan-out has not yet received (0 when caught up).",
		}),
	}
	for _, kind := range []string{FrameEvent, FrameAlert, FrameMetrics, FrameSnapshot, FrameHeartbeat, FrameControl} {
		m.frames.WithLabelValues(kind)
	}
	for _, reason := range []string{DropSlowConsumer, DropReplayError, DropShutdown} {
		m.drops.WithLabelValues(reason)
	}
	for _, c := range []prometheus.Collector{m.clients, m.frames, m.drops, m.lastSeq, m.lagMessages, m.lagSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register live stream metrics: %w", err)
		}
	}
	return m, nil
}

// ClientsAdd moves the open-connections gauge by delta.
func (m *SSE) ClientsAdd(delta float64) { m.clients.Add(delta) }

// Frames counts n frames of kind written.
func (m *SSE) Frames(kind string, n int) {
	if n > 0 {
		m.frames.WithLabelValues(kind).Add(float64(n))
	}
}

// Drop counts a stream the server ended for reason.
func (m *SSE) Drop(reason string) { m.drops.WithLabelValues(reason).Inc() }

// LastSeq records the hub's last stream sequence.
func (m *SSE) LastSeq(seq uint64) { m.lastSeq.Set(float64(seq)) }

// Lag records how far behind the stream the live fan-out is.
func (m *SSE) Lag(messages uint64, seconds float64) {
	m.lagMessages.Set(float64(messages))
	m.lagSeconds.Set(seconds)
}
