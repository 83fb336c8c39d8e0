package scenario

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/loadtest/internal/loadgen"
	"github.com/kilnhq/kiln/loadtest/internal/notifiereval"
	"github.com/kilnhq/kiln/loadtest/internal/payload"
	"github.com/kilnhq/kiln/loadtest/internal/projbench"
	"github.com/kilnhq/kiln/loadtest/internal/projlag"
	"github.com/kilnhq/kiln/loadtest/internal/report"
	"github.com/kilnhq/kiln/loadtest/internal/stats"
	"github.com/kilnhq/kiln/loadtest/internal/visibility"
	"github.com/kilnhq/kiln/projector/replay"
)

// Pacing of the e2e_visible_ms probes and the projection lag samples.
const (
	probeInterval   = 100 * time.Millisecond
	probePoll       = 5 * time.Millisecond
	probeMaxPoll    = 50 * time.Millisecond
	probesInFlight  = 8
	lagInterval     = 100 * time.Millisecond
	maxReplayEvents = 2_000_000 // the replay baseline holds the stream's events in memory
)

// stores are kiln-load's own connections to Kiln's stores.
type stores struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	db  *mongo.Database
	rdb redis.UniversalClient
}

// connect opens the connections a scenario needs: NATS always, MongoDB and
// Redis when asked.
func (r *runner) connect(ctx context.Context, withMongo, withRedis bool) (*stores, error) {
	s := &stores{}
	var err error
	if s.nc, err = nats.Connect(r.cfg.NATSURL, nats.Name("kiln-load")); err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", r.cfg.NATSURL, err)
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		s.close(ctx)
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if withMongo {
		client, err := mongo.Connect(options.Client().ApplyURI(r.cfg.MongoURL).SetTimeout(time.Minute))
		if err == nil {
			err = client.Ping(ctx, nil)
			s.db = client.Database(r.cfg.MongoDatabase)
		}
		if err != nil {
			s.close(ctx)
			return nil, fmt.Errorf("-mongo %s: %w", r.cfg.MongoURL, err)
		}
	}
	if withRedis {
		opts, err := redis.ParseURL(r.cfg.RedisURL)
		if err == nil {
			s.rdb = redis.NewClient(opts)
			err = s.rdb.Ping(ctx).Err()
		}
		if err != nil {
			s.close(ctx)
			return nil, fmt.Errorf("-redis %s: %w", r.cfg.RedisURL, err)
		}
	}
	return s, nil
}

func (s *stores) close(ctx context.Context) {
	if s.rdb != nil {
		_ = s.rdb.Close()
	}
	if s.db != nil {
		_ = s.db.Client().Disconnect(context.WithoutCancel(ctx))
	}
	if s.nc != nil {
		s.nc.Close()
	}
}

// storeLine is a projector_throughput or replay_rate line.
func storeLine(bench, store, baseline string, events int, rate, baseRate float64, batch int) report.Store {
	return report.Store{Bench: bench, Store: store, Baseline: baseline, Events: events, Batch: batch,
		EventsPerS: report.Rate(rate), BaselineEventsPerS: report.Rate(baseRate),
		Ratio: report.Ratio(stats.Ratio(rate, baseRate))}
}

// projector: for -duration per store, fresh batches of -proj-batch events
// go through readmodel's Counters.Apply and History.Apply (what the
// projector's consumers call per fetched batch), each batch interleaved
// with the raw baseline write of the same events to the same store.
func (r *runner) projector(ctx context.Context) (any, error) {
	s, err := r.connect(ctx, true, true)
	if err != nil {
		return nil, err
	}
	defer s.close(ctx)
	r.settle(ctx)
	before, statErr := projbench.ServerTime(ctx, s.rdb)
	ct, err := projbench.MeasureCounters(ctx, s.rdb, r.cfg.ProjBatch, r.cfg.Duration)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	attrs := []any{"phase", "projector_throughput redis", "events", ct.Events,
		"counters_apply", ct.Measured.Round(time.Millisecond), "hincrby", ct.Baseline.Round(time.Millisecond)}
	if after, err := projbench.ServerTime(ctx, s.rdb); err == nil && statErr == nil {
		// Where the time goes: inside Redis (the Lua script, the
		// HINCRBYs) and, the rest, in the client and on the wire.
		server := projbench.Since(before, after)
		attrs = append(attrs, "server_evalsha", server["evalsha"].Round(time.Millisecond),
			"server_hincrby", server["hincrby"].Round(time.Millisecond))
	}
	r.log.Info("phase done", attrs...)
	ht, err := projbench.MeasureHistory(ctx, s.db, r.cfg.ProjBatch, r.cfg.Duration)
	if err != nil {
		return nil, fmt.Errorf("mongo: %w", err)
	}
	r.log.Info("phase done", "phase", "projector_throughput mongo", "events", ht.Events,
		"history_apply", ht.Measured.Round(time.Millisecond), "insertmany", ht.Baseline.Round(time.Millisecond))
	cr, cb := ct.Rates()
	hr, hb := ht.Rates()
	return []any{
		storeLine(ProjectorThroughput, "redis", "pipelined HINCRBY", ct.Events, cr, cb, r.cfg.ProjBatch),
		storeLine(ProjectorThroughput, "mongo", "InsertMany", ht.Events, hr, hb, r.cfg.ProjBatch),
	}, nil
}

// visible: single events offered open-loop at -rate (as ingest_latency)
// while, after the warm-up, a probe every 100ms (at most 8 at once) posts
// an event with a client id and its own userId and polls
// GET /events?userId=<it>&limit=1 (every 5ms, backing off to every 50ms)
// until it is there, and the
// projections' lag is sampled every 100ms. It prints the e2e_visible_ms
// line and the projection_lag line.
func (r *runner) visible(ctx context.Context) (any, error) {
	c, err := r.client(r.cfg.Workers)
	if err != nil {
		return nil, err
	}
	s, err := r.connect(ctx, false, false)
	if err != nil {
		return nil, err
	}
	defer s.close(ctx)
	sampler, err := projlag.New(ctx, s.js)
	if err != nil {
		return nil, err
	}
	prober := visibility.New(visibility.Options{BaseURL: r.cfg.URL, APIKey: r.cfg.APIKey, List: true,
		Poll: probePoll, MaxPoll: probeMaxPoll, Timeout: max(r.cfg.Timeout, 10*time.Second)})
	defer prober.Close()
	bodies := payload.Singles(r.cfg.Workers)

	r.settle(ctx)
	measure, stop := context.WithCancel(ctx)
	var (
		wg     sync.WaitGroup
		probes probeResult
		lags   lagResult
	)
	wg.Go(func() {
		if sleep(measure, r.cfg.Warmup) {
			probes = runProbes(ctx, measure, prober)
		}
	})
	wg.Go(func() {
		if sleep(measure, r.cfg.Warmup) {
			lags = sampleLag(measure, sampler)
		}
	})
	load := loadgen.Open{Rate: r.cfg.Rate, Workers: r.cfg.Workers, Warmup: r.cfg.Warmup,
		Duration: r.cfg.Duration, Grace: max(r.cfg.Timeout, r.cfg.Duration/2)}.Run(ctx, func(_ context.Context, w int) (int, error) {
		return one(c.PostSingle(bodies[w]))
	})
	stop()
	wg.Wait()
	r.logResult("e2e_visible_ms background", load)
	if probes.firstErr != nil || lags.firstErr != nil {
		r.log.Warn("e2e_visible_ms errors", "probe_errors", probes.errors, "first_probe_err", probes.firstErr,
			"lag_errors", lags.errors, "first_lag_err", lags.firstErr)
	}
	r.purge(ctx, kilnPhase)

	vis := stats.Merge(probes.samples)
	worst := stats.Merge(lags.worst)
	// No successful probe (or sample) is no measurement: null, not 0.
	ms := func(s stats.Sorted, p float64) report.Millis {
		if len(s) == 0 {
			return report.Millis(math.NaN())
		}
		return report.Millis(stats.Millis(s.Percentile(p)))
	}
	return []any{
		report.Visible{
			Bench:              E2EVisible,
			OfferedEventsPerS:  report.Rate(r.cfg.Rate),
			AchievedEventsPerS: report.Rate(stats.PerSecond(load.Events, load.Elapsed)),
			P50Ms:              ms(vis, 50),
			P99Ms:              ms(vis, 99),
			MaxMs:              ms(vis, 100),
			Probes:             len(vis),
			Errors:             probes.errors,
			BackgroundErrors:   load.Errors + load.Dropped,
		},
		report.Lag{
			Bench:             ProjectionLag,
			OfferedEventsPerS: report.Rate(r.cfg.Rate),
			P50Ms:             ms(worst, 50),
			P99Ms:             ms(worst, 99),
			MaxMs:             ms(worst, 100),
			HistoryP99Ms:      ms(lags.of("history"), 99),
			CountersP99Ms:     ms(lags.of("counters"), 99),
			Samples:           len(worst),
			Errors:            lags.errors,
		},
	}, nil
}

// sleep waits d or until ctx is done, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// probeResult is what the probes measured.
type probeResult struct {
	samples  *stats.Samples
	errors   int64
	firstErr error
}

// runProbes starts a probe every probeInterval until launch is done (at
// most probesInFlight at once) and waits for the started ones, which run
// under ctx.
func runProbes(ctx, launch context.Context, p *visibility.Prober) probeResult {
	res := probeResult{samples: stats.NewSamples(256)}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, probesInFlight)
	)
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		select {
		case <-launch.Done():
			wg.Wait()
			return res
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default: // too many in flight: a stalled read API; skip this tick
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			d, err := p.Probe(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.errors++
				if res.firstErr == nil {
					res.firstErr = err
				}
				return
			}
			res.samples.Add(d)
		})
	}
}

// lagResult is what the lag samples measured.
type lagResult struct {
	worst    *stats.Samples            // per sample, the largest lag of any projection
	per      map[string]*stats.Samples // by projection
	errors   int64
	firstErr error
}

func (l lagResult) of(projection string) stats.Sorted {
	return stats.Merge(l.per[projection])
}

// sampleLag samples the projections' lag every lagInterval until ctx is
// done.
func sampleLag(ctx context.Context, s *projlag.Sampler) lagResult {
	res := lagResult{worst: stats.NewSamples(128), per: map[string]*stats.Samples{}}
	tick := time.NewTicker(lagInterval)
	defer tick.Stop()
	for {
		lags, err := s.Sample(ctx)
		switch {
		case ctx.Err() != nil:
			return res
		case err != nil:
			res.errors++
			if res.firstErr == nil {
				res.firstErr = err
			}
		case len(lags) > 0:
			var worst time.Duration
			for name, d := range lags {
				if res.per[name] == nil {
					res.per[name] = stats.NewSamples(128)
				}
				res.per[name].Add(d)
				worst = max(worst, d)
			}
			res.worst.Add(worst)
		}
		select {
		case <-ctx.Done():
			return res
		case <-tick.C:
		}
	}
}

// replayRate: -replay-events events are published to the stream and the
// live projections allowed to catch up (-settle); then the replay engine
// rebuilds the counters and the history, each over the whole stream, and
// the baselines write the same events raw: pipelined HINCRBYs, and
// InsertMany of the history documents into a scratch collection.
func (r *runner) replayRate(ctx context.Context) (any, error) {
	s, err := r.connect(ctx, true, true)
	if err != nil {
		return nil, err
	}
	defer s.close(ctx)
	start := time.Now()
	subjects, err := projbench.Fill(ctx, s.js, r.cfg.ReplayEvents)
	if err != nil {
		return nil, fmt.Errorf("fill the stream: %w", err)
	}
	r.log.Info("stream filled", "events", r.cfg.ReplayEvents, "took", time.Since(start).Round(time.Millisecond))
	defer func() {
		if r.cfg.PurgeIngested {
			for _, subject := range subjects {
				if err := r.pub.PurgeSubject(context.WithoutCancel(ctx), subject); err != nil {
					r.log.Warn("purge failed", "err", err)
				}
			}
		}
	}()
	r.settle(ctx)
	start = time.Now()
	events, err := projbench.ReadStream(ctx, s.js, maxReplayEvents)
	if err != nil {
		return nil, err
	}
	r.log.Info("stream read for the baselines", "events", len(events), "took", time.Since(start).Round(time.Millisecond))
	deps := replay.Deps{JetStream: s.js, Mongo: s.db, Redis: s.rdb, Log: r.log}

	cn, ctook, err := projbench.Replay(ctx, deps, replay.Counters)
	if err != nil {
		return nil, err
	}
	cbase, err := projbench.RawIncrAll(ctx, s.rdb, events)
	if err != nil {
		return nil, err
	}
	r.log.Info("phase done", "phase", "replay_rate redis", "events", cn, "replay", ctook.Round(time.Millisecond),
		"baseline_events", len(events), "hincrby", cbase.Round(time.Millisecond))

	base, err := projbench.NewInsertMany(ctx, s.db)
	if err != nil {
		return nil, err
	}
	hbase, err := base.Run(ctx, projbench.Docs(events), projbench.ReplayBatch)
	if err = errors.Join(err, base.Drop(context.WithoutCancel(ctx))); err != nil {
		return nil, err
	}
	hn, htook, err := projbench.Replay(ctx, deps, replay.History)
	if err != nil {
		return nil, err
	}
	r.log.Info("phase done", "phase", "replay_rate mongo", "events", hn, "replay", htook.Round(time.Millisecond),
		"baseline_events", len(events), "insertmany", hbase.Round(time.Millisecond))

	n := int64(len(events))
	return []any{
		storeLine(ReplayRate, "redis", "pipelined HINCRBY", cn, stats.PerSecond(int64(cn), ctook),
			stats.PerSecond(n, cbase), projbench.ReplayBatch),
		storeLine(ReplayRate, "mongo", "InsertMany", hn, stats.PerSecond(int64(hn), htook),
			stats.PerSecond(n, hbase), projbench.ReplayBatch),
	}, nil
}

// notifierEval runs the notifier's own evaluation benchmark
// (BenchmarkEvaluate in notifier/internal/evaluate, through go test) for
// about -duration.
func (r *runner) notifierEval(ctx context.Context) (any, error) {
	res, err := notifiereval.Run(ctx, r.cfg.Duration)
	if err != nil {
		return nil, err
	}
	return report.Notifier{
		Bench:              NotifierEval,
		EventsPerS:         report.Rate(res.EventsPerS),
		BaselineEventsPerS: report.Rate(res.BaselineEventsPerS),
		Ratio:              report.Ratio(res.Ratio()),
		Rules:              notifiereval.Rules,
		DecisionsPerEvent:  report.Ratio(res.DecisionsPerEvent),
	}, nil
}
