// Package live is the gateway's live event stream (GET /stream): one
// JetStream ordered consumer per process feeds a hub that fans every event
// out to the connected clients, each through a bounded buffer. A resuming
// client catches up from the hub's memory of the last events (see recent)
// or, when its position is older, from the stream with a short-lived
// ordered consumer of its own (at most MaxCatchUps at once), and then
// joins the fan-out with no gap and no duplicate.
package live

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/gateway/internal/metrics"
)

// Defaults of Options.
const (
	DefaultBuffer          = 4096
	DefaultHeartbeat       = 15 * time.Second
	DefaultMetricsInterval = 3 * time.Second
	DefaultWriteTimeout    = 10 * time.Second
	DefaultMaxCatchUps     = 16
	DefaultLagInterval     = 5 * time.Second
)

// Options configure a Hub.
type Options struct {
	JetStream jetstream.JetStream
	// Buffer is how many frames a client may have pending; a client that
	// falls further behind is disconnected as a slow consumer.
	Buffer int
	// Heartbeat is the period of the ": ping" comment frames.
	Heartbeat time.Duration
	// MetricsInterval is the period of the "metrics" frames.
	MetricsInterval time.Duration
	// WriteTimeout bounds how long one write to a client may block; a
	// client that accepts no data for this long is disconnected.
	WriteTimeout time.Duration
	// Snapshot returns the metrics frames' payload (GET /metrics); nil
	// sends no metrics frames. It is called once per interval for all
	// clients, and only while there are clients.
	Snapshot func(ctx context.Context) (any, error)
	// Summary returns the compat snapshot frame's total and newest events
	// (see Summary); nil sends no snapshot frames. It is called once per
	// MetricsInterval for all clients, only while there are clients, and
	// the frame is sent only when the summary changed, and only to
	// unfiltered streams (see Filter.everything).
	Summary func(ctx context.Context) (Summary, error)
	// AlertSubject is the core NATS subject on which the notifier
	// announces new alerts (readmodel.NewAlertSubject), read on the
	// JetStream's connection: each is fanned out as an "alert" frame to
	// every client that did not opt out. Empty sends no alert frames.
	AlertSubject string
	// MaxCatchUps bounds the resuming clients that read the stream with a
	// consumer of their own at once (those whose position is older than
	// the last Buffer events the hub holds); the others wait their turn.
	MaxCatchUps int
	// Metrics receives the live stream's metrics; nil keeps them private.
	Metrics *metrics.SSE
	Log     *slog.Logger
	// Tracer records a span per event fanned out; nil is no tracing.
	Tracer trace.TracerProvider
	// LagInterval is how often the lag gauges are refreshed.
	LagInterval time.Duration
}

// Errors of Available.
var (
	ErrNotRunning = errors.New("the live stream is not running")
	ErrClosed     = errors.New("the live stream is shutting down")
)

// Hub is the process's live fan-out. Run it, then Serve clients.
type Hub struct {
	opts      Options
	ping      *beacon
	snapshots *beacon
	// summaries holds the latest compat snapshot frame.
	summaries *beacon
	// life is canceled at shutdown; catch-up consumers run under it.
	life   context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed at shutdown
	ready  chan struct{} // closed once lastSeq is known
	// snapshotFailing is touched only by the metrics goroutine.
	snapshotFailing bool
	// lastSummary and summaryFailing are touched only by the summary
	// goroutine; lastSummary is the summary of the latest snapshot frame.
	lastSummary    *Summary
	summaryFailing bool

	// catchUps holds a token per catch-up consumer in use.
	catchUps chan struct{}
	// idle is closed once the hub is shut down and every stream ended.
	idle chan struct{}
	// boundsLock (a token) guards bounds.
	boundsLock chan struct{}
	bounds     bounds

	mu          sync.Mutex
	started     bool
	closed      bool
	initialized bool   // the start position is known
	readyAt     uint64 // the stream's last sequence at start: ready once fanned out
	lastSeq     uint64 // the last stream sequence fanned out
	clients     map[*session]struct{}
	live        index // subscribed to the fan-out
	recent      *recent
	// fanned is lastSeq for the lag gauges, read without h.mu.
	fanned atomic.Uint64
}

// New returns a hub; zero options take their defaults.
func New(o Options) *Hub {
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.MetricsInterval <= 0 {
		o.MetricsInterval = DefaultMetricsInterval
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxCatchUps <= 0 {
		o.MaxCatchUps = DefaultMaxCatchUps
	}
	if o.LagInterval <= 0 {
		o.LagInterval = DefaultLagInterval
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics, _ = metrics.NewSSE(prometheus.NewRegistry()) // a fresh registry takes them
	}
	life, cancel := context.WithCancel(context.Background())
	return &Hub{
		opts: o, ping: newBeacon(), snapshots: newBeacon(), summaries: newBeacon(),
		life: life, cancel: cancel, done: make(chan struct{}), ready: make(chan struct{}),
		catchUps: make(chan struct{}, o.MaxCatchUps), idle: make(chan struct{}), boundsLock: make(chan struct{}, 1),
		clients: map[*session]struct{}{}, live: newIndex(), recent: newRecent(o.Buffer),
	}
}

// Available reports whether the hub accepts clients: it is running and not
// shutting down.
func (h *Hub) Available() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return ErrClosed
	case !h.started:
		return ErrNotRunning
	}
	return nil
}

// open registers a client; false when the hub does not accept clients.
func (h *Hub) open(s *session) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || !h.started {
		return false
	}
	h.clients[s] = struct{}{}
	h.opts.Metrics.ClientsAdd(1)
	return true
}

// leave forgets a client.
func (h *Hub) leave(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.live.remove(s)
	delete(h.clients, s)
	h.opts.Metrics.ClientsAdd(-1)
	if h.closed && len(h.clients) == 0 {
		close(h.idle) // open admits no one after shutdown: this happens once
	}
}

// subscribe adds s to the fan-out with a fresh buffer and returns the
// mailbox and the last sequence fanned out so far: every later event that
// matches s's filter goes to the mailbox, in order, until it overflows
// (then it is closed). The hub must be ready.
func (h *Hub) subscribe(s *session, catchingUp bool) (*mailbox, uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, 0, errShutdown
	}
	s.box = newMailbox(h.opts.Buffer)
	s.catchingUp, s.overflowed = catchingUp, false
	h.live.add(s)
	return s.box, h.lastSeq, nil
}

// fannedOut is the last sequence fanned out.
func (h *Hub) fannedOut() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastSeq
}

// recentCovers reports whether the recent events hold every event after
// cursor up to the last fanned out. The hub must be ready.
func (h *Hub) recentCovers(cursor uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return cursor <= h.lastSeq && h.recent.covers(cursor)
}

// recentAfter is the recent frames after cursor up to upto; false when
// they do not cover cursor.
func (h *Hub) recentAfter(cursor, upto uint64) ([]*Frame, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.recent.after(cursor, upto, nil)
}

// goLive ends s's catch-up; false when its buffer overflowed meanwhile.
func (h *Hub) goLive(s *session) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.catchingUp = false
	return !s.overflowed
}

// clientCount is the number of open streams.
func (h *Hub) clientCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// start marks the hub running; false when it ran before.
func (h *Hub) start() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started || h.closed {
		return false
	}
	h.started = true
	return true
}

// shutdownGrace is how long a client may still take to receive its final
// frame at shutdown before its connection's writes fail.
const shutdownGrace = 500 * time.Millisecond

// waitSessions waits up to timeout for every stream to end after shutdown;
// a stream still open then is left to end on its own, nothing waits for it.
func (h *Hub) waitSessions(timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-h.idle:
	case <-t.C:
		h.opts.Log.Warn("live stream: streams still open after shutdown", "waited", timeout)
	}
}

// shutdown stops accepting clients and ends every stream: the writers
// select on done, and connections stuck in a write get a close deadline.
func (h *Hub) shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.done)
	h.cancel()
	if len(h.clients) == 0 {
		close(h.idle)
	}
	deadline := time.Now().Add(shutdownGrace)
	for s := range h.clients {
		s.kick(deadline)
	}
}
