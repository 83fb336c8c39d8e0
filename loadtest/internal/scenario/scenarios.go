package scenario

import (
	"context"

	"github.com/kilnhq/kiln/loadtest/internal/loadgen"
	"github.com/kilnhq/kiln/loadtest/internal/payload"
	"github.com/kilnhq/kiln/loadtest/internal/report"
	"github.com/kilnhq/kiln/loadtest/internal/stats"
)

// batch: -clients clients post JSON arrays of -batch events back to back;
// the baseline is as many goroutines publishing the same envelopes async in
// windows of -batch, each window's acks awaited before the next.
func (r *runner) batch(ctx context.Context) (any, error) {
	c, err := r.client(r.cfg.Clients)
	if err != nil {
		return nil, err
	}
	bodies := payload.Batches(r.cfg.Clients, r.cfg.Batch)
	load, base := r.alternate(func() loadgen.Result {
		return r.closed(ctx, "ingest_batch http", kilnPhase, func(_ context.Context, w int) (int, error) {
			return c.PostBatch(bodies[w], r.cfg.Batch)
		})
	}, func() loadgen.Result {
		return r.closed(ctx, "ingest_batch baseline", baselinePhase, func(ctx context.Context, _ int) (int, error) {
			return r.pub.Window(ctx, r.cfg.Batch)
		})
	})
	rate := stats.PerSecond(load.Events, load.Elapsed)
	baseRate := stats.PerSecond(base.Events, base.Elapsed)
	return report.Batch{
		Bench:              IngestBatch,
		EventsPerS:         report.Rate(rate),
		BaselineEventsPerS: report.Rate(baseRate),
		Ratio:              report.Ratio(stats.Ratio(rate, baseRate)),
		P99Ms:              report.Millis(stats.Millis(load.Latency.Percentile(99))),
		Clients:            r.cfg.Clients,
		Batch:              r.cfg.Batch,
		Errors:             load.Errors + load.Dropped,
		Rounds:             max(1, r.cfg.Rounds),
	}, nil
}

// single: -clients clients post one event per request back to back; the
// baseline is as many goroutines each publishing synchronously.
func (r *runner) single(ctx context.Context) (any, error) {
	c, err := r.client(r.cfg.Clients)
	if err != nil {
		return nil, err
	}
	bodies := payload.Singles(r.cfg.Clients)
	load, base := r.alternate(func() loadgen.Result {
		return r.closed(ctx, "ingest_single http", kilnPhase, func(_ context.Context, w int) (int, error) {
			return one(c.PostSingle(bodies[w]))
		})
	}, func() loadgen.Result {
		return r.closed(ctx, "ingest_single baseline", baselinePhase, func(ctx context.Context, _ int) (int, error) {
			return one(r.pub.Sync(ctx))
		})
	})
	// Every successful request stores one event, so requests/s is events/s.
	rate := stats.PerSecond(load.Events, load.Elapsed)
	baseRate := stats.PerSecond(base.Events, base.Elapsed)
	return report.Single{
		Bench:              IngestSingle,
		ReqPerS:            report.Rate(rate),
		BaselineEventsPerS: report.Rate(baseRate),
		Ratio:              report.Ratio(stats.Ratio(rate, baseRate)),
		P50Ms:              report.Millis(stats.Millis(load.Latency.Percentile(50))),
		P99Ms:              report.Millis(stats.Millis(load.Latency.Percentile(99))),
		Clients:            r.cfg.Clients,
		Errors:             load.Errors + load.Dropped,
		Rounds:             max(1, r.cfg.Rounds),
	}, nil
}

// latency: single-event posts offered open-loop at -rate by a pool of
// -workers; latency counts from each post's scheduled time. The baseline is
// synchronous publishes offered the same way.
func (r *runner) latency(ctx context.Context) (any, error) {
	c, err := r.client(r.cfg.Workers)
	if err != nil {
		return nil, err
	}
	bodies := payload.Singles(r.cfg.Workers)
	load, base := r.alternate(func() loadgen.Result {
		return r.open(ctx, "ingest_latency http", kilnPhase, func(_ context.Context, w int) (int, error) {
			return one(c.PostSingle(bodies[w]))
		})
	}, func() loadgen.Result {
		return r.open(ctx, "ingest_latency baseline", baselinePhase, func(ctx context.Context, _ int) (int, error) {
			return one(r.pub.Sync(ctx))
		})
	})
	baseP99 := report.Millis(stats.Millis(base.Latency.Percentile(99)))
	return report.Latency{
		Bench:              IngestLatency,
		OfferedEventsPerS:  report.Rate(r.cfg.Rate),
		AchievedEventsPerS: report.Rate(stats.PerSecond(load.Events, load.Elapsed)),
		P50Ms:              report.Millis(stats.Millis(load.Latency.Percentile(50))),
		P99Ms:              report.Millis(stats.Millis(load.Latency.Percentile(99))),
		MaxMs:              report.Millis(stats.Millis(load.Latency.Max())),
		Errors:             load.Errors + load.Dropped,
		BaselineP99Ms:      &baseP99,
		Rounds:             max(1, r.cfg.Rounds),
	}, nil
}

// alternate runs a scenario's Kiln phase and then its baseline phase,
// -rounds times, and sums each side's rounds: on a machine whose load
// drifts, neither side gets the quiet minutes alone.
func (r *runner) alternate(kiln, base func() loadgen.Result) (loadgen.Result, loadgen.Result) {
	var ks, bs []loadgen.Result
	for range max(1, r.cfg.Rounds) {
		ks = append(ks, kiln())
		bs = append(bs, base())
	}
	return loadgen.Combine(ks...), loadgen.Combine(bs...)
}

// one turns a single-event outcome into (events, err).
func one(err error) (int, error) {
	if err != nil {
		return 0, err
	}
	return 1, nil
}
