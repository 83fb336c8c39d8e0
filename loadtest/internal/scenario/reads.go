package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kilnhq/kiln/loadtest/internal/eventpost"
	"github.com/kilnhq/kiln/loadtest/internal/loadgen"
	"github.com/kilnhq/kiln/loadtest/internal/readbench"
	"github.com/kilnhq/kiln/loadtest/internal/report"
	"github.com/kilnhq/kiln/loadtest/internal/stats"
)

// Read scenarios and what they preload.
const (
	ReadEvents  = "read_events"
	ReadMetrics = "read_metrics"
	readType    = "read.a"   // the type shape's type (one of four)
	readUser    = "reader-7" // the userId shape's user (one of 100)
)

// readShape is one GET /events query of read_events and its baseline index.
type readShape struct{ name, path, index string }

func readShapes() []readShape {
	return []readShape{
		{"no filter", "/events?limit=50", "all"},
		{"type", "/events?limit=50&type=" + readType, "t:" + readType},
		{"userId", "/events?limit=50&userId=" + readUser, "u:" + readUser},
	}
}

// readEvents: after posting -read-preload events (four types, 100 users),
// -read-clients connections read GET /events?limit=50 closed-loop, without
// a filter, with type and with userId; the baseline runs the same-shape raw
// Redis commands (readbench.RedisEvents) from as many goroutines.
func (r *runner) readEvents(ctx context.Context) (any, error) {
	if err := r.preloadReads(ctx); err != nil {
		return nil, err
	}
	r.settle(ctx) // the history's backlog would take the CPU the reads are measured on
	g, err := readbench.NewGetter(r.cfg.URL, r.cfg.APIKey, r.readClients(), r.cfg.Timeout)
	if err != nil {
		return nil, err
	}
	rdb, err := r.redisClient()
	if err != nil {
		return nil, err
	}
	defer rdb.Close()
	prefix, err := readbench.LivePrefix(ctx, rdb)
	if err != nil {
		return nil, err
	}
	var lines []any
	for _, s := range readShapes() {
		var all, fromCache atomic.Int64 // warm-up included
		load := r.readLoop(ctx, "read_events "+s.name, func(context.Context, int) (int, error) {
			a, err := g.Get(s.path)
			all.Add(1)
			if a.Source == "cache" {
				fromCache.Add(1)
			}
			return one(err)
		})
		base := r.readLoop(ctx, "read_events "+s.name+" baseline", func(ctx context.Context, _ int) (int, error) {
			return one(readbench.RedisEvents(ctx, rdb, prefix, s.index))
		})
		lines = append(lines, readLine(ReadEvents, s.name, load, base, float64(fromCache.Load())/float64(max(all.Load(), 1)), r.readClients()))
	}
	return lines, nil
}

// readMetrics: GET /metrics closed-loop from -read-clients connections;
// the baseline is the snapshot's raw Redis pipeline (readbench.RedisMetrics).
func (r *runner) readMetrics(ctx context.Context) (any, error) {
	g, err := readbench.NewGetter(r.cfg.URL, r.cfg.APIKey, r.readClients(), r.cfg.Timeout)
	if err != nil {
		return nil, err
	}
	rdb, err := r.redisClient()
	if err != nil {
		return nil, err
	}
	defer rdb.Close()
	prefix, err := readbench.LivePrefix(ctx, rdb)
	if err != nil {
		return nil, err
	}
	load := r.readLoop(ctx, "read_metrics", func(context.Context, int) (int, error) {
		_, err := g.Get("/metrics")
		return one(err)
	})
	base := r.readLoop(ctx, "read_metrics baseline", func(ctx context.Context, _ int) (int, error) {
		return one(readbench.RedisMetrics(ctx, rdb, prefix, time.Now()))
	})
	return readLine(ReadMetrics, "", load, base, 0, r.readClients()), nil
}

func (r *runner) readClients() int {
	if r.cfg.ReadClients == 0 {
		return 64
	}
	return r.cfg.ReadClients
}

func (r *runner) readLoop(ctx context.Context, phase string, op loadgen.Op) loadgen.Result {
	res := loadgen.Closed{Workers: r.readClients(), Warmup: r.cfg.Warmup, Duration: r.cfg.Duration}.Run(ctx, op)
	r.logResult(phase, res)
	return res
}

func (r *runner) redisClient() (*redis.Client, error) {
	opts, err := redis.ParseURL(r.cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("-redis: %w", err)
	}
	opts.PoolSize = r.readClients()
	return redis.NewClient(opts), nil
}

func readLine(bench, shape string, load, base loadgen.Result, cacheShare float64, clients int) report.Read {
	rate := stats.PerSecond(load.Ops-load.Errors, load.Elapsed)
	baseRate := stats.PerSecond(base.Ops-base.Errors, base.Elapsed)
	line := report.Read{
		Bench: bench, Shape: shape, Value: report.Rate(rate), Unit: "req/s",
		Baseline: report.Rate(baseRate), Ratio: report.Ratio(stats.Ratio(rate, baseRate)),
		P50Ms: report.Millis(stats.Millis(load.Latency.Percentile(50))), P99Ms: report.Millis(stats.Millis(load.Latency.Percentile(99))),
		Clients: clients, Errors: load.Errors + base.Errors,
	}
	if bench == ReadEvents {
		share := report.Ratio(cacheShare)
		line.CacheShare = &share
	}
	return line
}

// preloadReads posts -read-preload events in batches of 1,000 from 4
// clients, then waits (up to -settle, at least a minute) until GET /events
// is answered by the cache.
func (r *runner) preloadReads(ctx context.Context) error {
	const batch, clients = 1000, 4
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	c, err := eventpost.New(eventpost.Options{BaseURL: r.cfg.URL, MaxConns: clients, Timeout: max(r.cfg.Timeout, 30*time.Second), APIKey: r.cfg.APIKey})
	if err != nil {
		return err
	}
	start := time.Now()
	var next atomic.Int64
	errs := make(chan error, clients)
	for range clients {
		go func() {
			for {
				b := next.Add(1) - 1
				if int(b)*batch >= r.cfg.ReadPreload || ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				// Client ids make a retried batch idempotent: ingest may
				// refuse part of a batch with 503 under this load.
				body := readBatch(nonce, int(b), batch)
				if err := c.PostBatchRetrying(ctx, body, batch, 51, nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			return fmt.Errorf("preload: %w", err)
		}
	}
	r.log.Info("read_events preloaded", "events", r.cfg.ReadPreload, "took", time.Since(start).Round(time.Millisecond))
	g, err := readbench.NewGetter(r.cfg.URL, r.cfg.APIKey, 1, r.cfg.Timeout)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(max(r.cfg.Settle, time.Minute))
	for {
		a, err := g.Get("/events?limit=1&userId=" + readUser)
		if err == nil && a.Source == "cache" {
			r.log.Info("read_events: the cache answers", "waited", time.Since(start).Round(time.Millisecond))
			return nil
		}
		if time.Now().After(deadline) {
			r.log.Warn("read_events: the cache does not answer yet; measuring anyway", "source", a.Source, "err", err)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// readBatch is the JSON array of preload batch b: four types, 100 users,
// timestamps one millisecond apart ending now.
func readBatch(nonce string, b, n int) []byte {
	type ev struct {
		ID        string         `json:"id"`
		EventType string         `json:"eventType"`
		UserID    string         `json:"userId"`
		Timestamp int64          `json:"timestamp"`
		Metadata  map[string]any `json:"metadata"`
	}
	now := time.Now().UnixMilli()
	evs := make([]ev, n)
	for i := range evs {
		k := b*n + i
		evs[i] = ev{ID: "read-" + nonce + "-" + strconv.Itoa(k), EventType: fmt.Sprintf("read.%c", 'a'+k%4), UserID: fmt.Sprintf("reader-%d", k%100),
			Timestamp: now - int64(n-i), Metadata: map[string]any{"path": "/read", "n": k, "ok": true}}
	}
	body, _ := json.Marshal(evs)
	return body
}
