package scenario

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/kilnhq/kiln/loadtest/internal/baseline"
	"github.com/kilnhq/kiln/loadtest/internal/eventpost"
	"github.com/kilnhq/kiln/loadtest/internal/loadgen"
	"github.com/kilnhq/kiln/loadtest/internal/payload"
	"github.com/kilnhq/kiln/loadtest/internal/report"
	"github.com/kilnhq/kiln/loadtest/internal/stats"
	"github.com/kilnhq/kiln/schemas"
)

// minPending is the least async-publish backlog the baseline allows; ingest
// uses the same.
const minPending = 16384

// runner holds what every scenario shares.
type runner struct {
	cfg Config
	out io.Writer
	log *slog.Logger
	pub *baseline.Publisher
}

// Run checks that Kiln and NATS answer, then runs the configured scenarios
// in order and writes one JSON line per scenario to out. Progress goes to
// log. Failed requests are counted in the results, not returned; Run fails
// only when it cannot measure at all.
func Run(ctx context.Context, cfg Config, out io.Writer, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	pub, err := baseline.Connect(ctx, baseline.Options{
		URL:        cfg.NATSURL,
		Subject:    payload.BaselineSubject,
		Data:       payload.Envelope(),
		UserID:     payload.BaselineUserID(),
		MaxPending: max(minPending, cfg.Clients*cfg.Batch),
		Timeout:    cfg.Timeout,
	})
	if err != nil {
		return err
	}
	defer pub.Close()
	if err := preflight(cfg); err != nil {
		return err
	}
	r := &runner{cfg: cfg, out: out, log: log, pub: pub}
	scenarios := map[string]func(context.Context) (any, error){
		IngestBatch:         r.batch,
		IngestSingle:        r.single,
		IngestLatency:       r.latency,
		IngestTypes:         r.types,
		SSEFanout:           r.sseFanout,
		ProjectorThroughput: r.projector,
		E2EVisible:          r.visible,
		ReplayRate:          r.replayRate,
		NotifierEval:        r.notifierEval,
		ReadEvents:          r.readEvents,
		ReadMetrics:         r.readMetrics,
	}
	for _, name := range cfg.Scenarios {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Info("scenario", "name", name, "duration", cfg.Duration, "warmup", cfg.Warmup)
		line, err := scenarios[name](ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if ctx.Err() != nil { // interrupted: the numbers are not a full run
			return ctx.Err()
		}
		lines, ok := line.([]any) // a scenario may print several lines
		if !ok {
			lines = []any{line}
		}
		for _, line := range lines {
			if err := report.Write(out, line); err != nil {
				return err
			}
		}
	}
	return nil
}

// preflight posts one event so a wrong -url fails with a clear message
// instead of a result full of errors.
func preflight(cfg Config) error {
	c, err := eventpost.New(eventpost.Options{BaseURL: cfg.URL, MaxConns: 1, Timeout: cfg.Timeout, APIKey: cfg.APIKey})
	if err != nil {
		return err
	}
	if err := c.PostSingle(payload.Singles(1)[0]); err != nil {
		return fmt.Errorf("kiln at %s does not accept events: %w", cfg.URL, err)
	}
	return nil
}

// client returns an HTTP client with conns connections.
func (r *runner) client(conns int) (*eventpost.Client, error) {
	return eventpost.New(eventpost.Options{BaseURL: r.cfg.URL, MaxConns: conns, Timeout: r.cfg.Timeout, APIKey: r.cfg.APIKey})
}

// phaseKind says what a load phase writes to the stream.
type phaseKind int

const (
	kilnPhase     phaseKind = iota // events posted to Kiln
	baselinePhase                  // raw publishes to the baseline subject
)

// closed runs op closed-loop with -clients workers.
func (r *runner) closed(ctx context.Context, phase string, kind phaseKind, op loadgen.Op) loadgen.Result {
	r.settle(ctx)
	res := loadgen.Closed{Workers: r.cfg.Clients, Warmup: r.cfg.Warmup, Duration: r.cfg.Duration}.Run(ctx, op)
	r.logResult(phase, res)
	r.purge(ctx, kind)
	return res
}

// open runs op open-loop at -rate with -workers workers.
func (r *runner) open(ctx context.Context, phase string, kind phaseKind, op loadgen.Op) loadgen.Result {
	r.settle(ctx)
	res := loadgen.Open{Rate: r.cfg.Rate, Workers: r.cfg.Workers, Warmup: r.cfg.Warmup,
		Duration: r.cfg.Duration, Grace: max(r.cfg.Timeout, r.cfg.Duration/2)}.Run(ctx, op)
	r.logResult(phase, res)
	r.purge(ctx, kind)
	return res
}

// settle waits, up to -settle, for Kiln's projections to catch up.
func (r *runner) settle(ctx context.Context) {
	if r.cfg.Settle > 0 {
		start := time.Now()
		if r.pub.Settle(ctx, r.cfg.Settle, r.log) && time.Since(start) > time.Second {
			r.log.Info("projections caught up", "waited", time.Since(start).Round(time.Millisecond))
		}
	}
}

// purge drops what a phase wrote when asked to: the baseline's messages
// unless -keep-baseline, the posted events with -purge-ingested.
func (r *runner) purge(ctx context.Context, kind phaseKind) {
	subjects := []string{payload.BaselineSubject}
	switch {
	case kind == baselinePhase && r.cfg.KeepBaseline, kind == kilnPhase && !r.cfg.PurgeIngested:
		return
	case kind == kilnPhase:
		subjects = []string{schemas.Subject(payload.EventType), schemas.Subject(payload.TypePrefix) + ".>"}
	}
	for _, subject := range subjects {
		if err := r.pub.PurgeSubject(ctx, subject); err != nil {
			r.log.Warn("purge failed", "subject", subject, "err", err)
		}
	}
}

func (r *runner) logResult(phase string, res loadgen.Result) {
	attrs := []any{
		"phase", phase,
		"ops", res.Ops,
		"events", res.Events,
		"errors", res.Errors,
		"elapsed", res.Elapsed.Round(1e6),
		"events_per_s", int64(stats.PerSecond(res.Events, res.Elapsed)),
		"p50_ms", stats.Millis(res.Latency.Percentile(50)),
		"p99_ms", stats.Millis(res.Latency.Percentile(99)),
	}
	if res.Dropped > 0 {
		attrs = append(attrs, "dropped", res.Dropped)
	}
	if res.FirstErr != nil {
		attrs = append(attrs, "first_err", res.FirstErr.Error())
	}
	r.log.Info("phase done", attrs...)
}
