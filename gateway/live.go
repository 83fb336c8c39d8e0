// The live stream, GET /stream: its configuration, its hub and (*Service).Run.

package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/gateway/internal/live"
	"github.com/kilnhq/kiln/gateway/internal/metrics"
	"github.com/kilnhq/kiln/readmodel"
)

// maxSSEBuffer caps GATEWAY_SSE_BUFFER: a pending frame costs a client 8
// to 16 bytes (a pointer in a queue that grows only while the client is
// behind; the frames themselves are shared), so at most 1 MiB.
const maxSSEBuffer = 1 << 16

// SSEConfig configures the live stream, GET /stream. Zero fields take the
// env defaults when the gateway is built from a Config literal.
type SSEConfig struct {
	// Buffer is how many frames one client may have pending; a client
	// that falls further behind is disconnected with a final error frame.
	// The queue grows only as far as the client is behind: an idle or
	// keeping-up client holds almost nothing.
	Buffer int `env:"GATEWAY_SSE_BUFFER" envDefault:"4096"`
	// MetricsInterval is the period of the "metrics" frames (the
	// GET /metrics payload), computed once per period for all clients,
	// and of the check for a new compat snapshot frame.
	MetricsInterval time.Duration `env:"GATEWAY_SSE_METRICS_INTERVAL" envDefault:"3s"`
	// Heartbeat is the period of the ": ping" comment lines that keep
	// proxies from closing idle streams.
	Heartbeat time.Duration `env:"GATEWAY_SSE_HEARTBEAT" envDefault:"15s"`
	// WriteTimeout cuts off a client that accepts no data for this long.
	WriteTimeout time.Duration `env:"GATEWAY_SSE_WRITE_TIMEOUT" envDefault:"10s"`
}

func (c SSEConfig) validate() []error {
	var errs []error
	if c.Buffer < 1 || c.Buffer > maxSSEBuffer {
		errs = append(errs, fmt.Errorf("GATEWAY_SSE_BUFFER must be between 1 and %d frames, got %d", maxSSEBuffer, c.Buffer))
	}
	for _, d := range []struct {
		name    string
		value   time.Duration
		atLeast time.Duration
	}{
		{"GATEWAY_SSE_METRICS_INTERVAL", c.MetricsInterval, time.Millisecond},
		{"GATEWAY_SSE_HEARTBEAT", c.Heartbeat, time.Millisecond},
		{"GATEWAY_SSE_WRITE_TIMEOUT", c.WriteTimeout, 100 * time.Millisecond},
	} {
		if d.value < d.atLeast {
			errs = append(errs, fmt.Errorf("%s must be at least %s, got %s", d.name, d.atLeast, d.value))
		}
	}
	return errs
}

// summaryRecent is how many events the compat snapshot frame lists.
const summaryRecent = 5

// summaryMongoEvery is how often, at most, the compat snapshot frame's
// newest events are read from MongoDB while the total stays the same (when
// the recent-events cache cannot answer): on the embedded store a sorted
// query reads every stored event.
const summaryMongoEvery = 30 * time.Second

// newestFunc reads the n newest stored events (httpapi.Handler.Newest).
type newestFunc func(ctx context.Context, n int) (body []byte, cached bool, err error)

// summarizer computes the compat snapshot frame's content for the hub,
// which calls it from one goroutine.
type summarizer struct {
	counters *readmodel.Counters
	newest   newestFunc
	// the last answer read from MongoDB, reused while the total holds
	total  int64
	recent []byte
	readAt time.Time
}

func (s *summarizer) summary(ctx context.Context) (live.Summary, error) {
	total, err := s.counters.Total(ctx)
	if err != nil {
		return live.Summary{}, err
	}
	if s.recent != nil && total == s.total && time.Since(s.readAt) < summaryMongoEvery {
		return live.Summary{Total: total, Recent: s.recent}, nil
	}
	recent, cached, err := s.newest(ctx, summaryRecent)
	if err != nil {
		return live.Summary{}, err
	}
	s.recent = nil
	if !cached {
		s.total, s.recent, s.readAt = total, recent, time.Now()
	}
	return live.Summary{Total: total, Recent: recent}, nil
}

// newHub builds the live stream's hub; nil without JetStream. newest reads
// the newest stored events for the compat snapshot frame.
func newHub(cfg SSEConfig, js jetstream.JetStream, counters *readmodel.Counters, newest newestFunc,
	reg prometheus.Registerer, tp trace.TracerProvider, log *slog.Logger) (*live.Hub, error) {
	if js == nil {
		return nil, nil
	}
	m, err := metrics.NewSSE(reg)
	if err != nil {
		return nil, err
	}
	return live.New(live.Options{
		JetStream:       js,
		Buffer:          cfg.Buffer,
		Heartbeat:       cfg.Heartbeat,
		MetricsInterval: cfg.MetricsInterval,
		WriteTimeout:    cfg.WriteTimeout,
		AlertSubject:    readmodel.NewAlertSubject,
		Snapshot: func(ctx context.Context) (any, error) {
			return counters.Snapshot(ctx, time.Now())
		},
		Summary: (&summarizer{counters: counters, newest: newest}).summary,
		Metrics: m,
		Log:     log.With("component", "live"),
		Tracer:  tp,
	}), nil
}

// Run runs the live stream (GET /stream) until ctx is done: one JetStream
// consumer for the whole process feeding every client. When ctx is done it
// ends every open stream, so an HTTP server shutting down at the same time
// is not held up by them, and returns nil. Without Deps.JetStream it
// returns nil at once. Call it once, beside serving the app that Register
// mounted the routes on.
func (s *Service) Run(ctx context.Context) error {
	if s.stream.Hub == nil {
		return nil
	}
	if err := s.stream.Hub.Run(ctx); err != nil {
		return fmt.Errorf("gateway live stream: %w", err)
	}
	return nil
}
