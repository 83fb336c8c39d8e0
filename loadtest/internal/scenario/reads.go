package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kilnhq/kiln/connect"
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

// Read orders: how read_events' preloaded events are stamped (-read-order).
const (
	// ReadShuffled: timestamps spread over the minute before the preload,
	// in random order, as clients' clocks and batching send them. (Over an
	// hour, the events of the scenarios run before it in the same minutes
	// — sse_fanout's, replay_rate's — were newer than most of the preload,
	// and the cache's newest 100,000 held too few of reader-7's events to
	// answer its page: MongoDB was measured instead.)
	ReadShuffled = "shuffled"
	// ReadOrdered: timestamps one millisecond apart, ending at the preload.
	ReadOrdered = "ordered"
)

// readOrders are the orders -read-order names ("both": shuffled, then
// ordered).
func readOrders(order string) []string {
	if order == "both" {
		return []string{ReadShuffled, ReadOrdered}
	}
	return []string{order}
}

// readEvents: for each -read-order, after posting -read-preload events
// (four types, 100 users) stamped in that order, -read-clients connections
// read GET /events?limit=50 closed-loop, without a filter, with type and
// with userId. Each line has two same-run baselines: the same-shape raw
// Redis commands (readbench.RedisEvents) from as many goroutines, and
// GET /healthz from as many connections (what the HTTP stack alone serves).
// The events preloaded last are the newest, so each order's reads see its
// own events.
func (r *runner) readEvents(ctx context.Context) (any, error) {
	var lines []any
	for _, order := range readOrders(r.readOrder()) {
		l, err := r.readEventsIn(ctx, order)
		if err != nil {
			return nil, err
		}
		lines = append(lines, l...)
	}
	return lines, nil
}

func (r *runner) readEventsIn(ctx context.Context, order string) ([]any, error) {
	if err := r.preloadReads(ctx, order); err != nil {
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
	healthz := r.healthz(ctx, g)
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
		line := readLine(ReadEvents, s.name, load, base, float64(fromCache.Load())/float64(max(all.Load(), 1)), r.readClients())
		line.Timestamps = readOrderLabel(order)
		lines = append(lines, line.WithHealthz(healthz))
	}
	return lines, nil
}

func readOrderLabel(order string) string {
	if order == ReadShuffled {
		return "shuffled over 1m"
	}
	return "in order"
}

// healthz measures GET /healthz closed-loop from -read-clients connections:
// the same-run rate of the HTTP stack with no work behind it.
func (r *runner) healthz(ctx context.Context, g *readbench.Getter) float64 {
	res := r.readLoop(ctx, "GET /healthz", func(context.Context, int) (int, error) {
		_, err := g.Get("/healthz")
		return one(err)
	})
	return stats.PerSecond(res.Ops-res.Errors, res.Elapsed)
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
	healthz := r.healthz(ctx, g)
	load := r.readLoop(ctx, "read_metrics", func(context.Context, int) (int, error) {
		_, err := g.Get("/metrics")
		return one(err)
	})
	base := r.readLoop(ctx, "read_metrics baseline", func(ctx context.Context, _ int) (int, error) {
		return one(readbench.RedisMetrics(ctx, rdb, prefix, time.Now()))
	})
	return readLine(ReadMetrics, "", load, base, 0, r.readClients()).WithHealthz(healthz), nil
}

func (r *runner) readOrder() string {
	if r.cfg.ReadOrder == "" {
		return "both"
	}
	return r.cfg.ReadOrder
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

func (r *runner) redisClient() (redis.UniversalClient, error) {
	t, err := connect.ParseRedisURL(r.cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("-redis: %w", err)
	}
	t.SetPoolSize(r.readClients())
	return t.Client(), nil
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

// preloadReads posts -read-preload events stamped in order (ReadOrdered or
// ReadShuffled) in batches of 1,000 from 4 clients, then waits (up to
// -settle, at least a minute) until GET /events is answered by the cache.
func (r *runner) preloadReads(ctx context.Context, order string) error {
	const batch, clients = 1000, 4
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	stamps := readStamps(order, (r.cfg.ReadPreload+batch-1)/batch*batch, time.Now()) // whole batches
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
				body := readBatch(nonce, int(b), batch, stamps)
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
	r.log.Info("read_events preloaded", "events", r.cfg.ReadPreload, "timestamps", readOrderLabel(order), "took", time.Since(start).Round(time.Millisecond))
	g, err := readbench.NewGetter(r.cfg.URL, r.cfg.APIKey, 1, r.cfg.Timeout)
	if err != nil {
		return err
	}
	// Every measured query, as measured: the cache answers each once it
	// holds the preload's newest page of it.
	deadline := time.Now().Add(max(r.cfg.Settle, time.Minute))
	shapes := readShapes()
	for len(shapes) > 0 {
		a, err := g.Get(shapes[0].path)
		if err == nil && a.Source == "cache" {
			shapes = shapes[1:]
			continue
		}
		if time.Now().After(deadline) {
			r.log.Warn("read_events: the cache does not answer yet; measuring anyway", "query", shapes[0].path, "source", a.Source, "err", err)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	r.log.Info("read_events: the cache answers", "waited", time.Since(start).Round(time.Millisecond))
	return nil
}

// readStamps are the timestamps (Unix ms) of n preloaded events, by index:
// ordered, one millisecond apart ending at now; shuffled, a random
// permutation of n instants spread evenly over the minute before now.
func readStamps(order string, n int, now time.Time) []int64 {
	end := now.UnixMilli()
	stamps := make([]int64, n)
	if order == ReadOrdered {
		for k := range stamps {
			stamps[k] = end - int64(n-k)
		}
		return stamps
	}
	span := time.Minute.Milliseconds()
	for k, p := range rand.Perm(n) {
		stamps[k] = end - span + int64(p)*span/int64(max(n, 1))
	}
	return stamps
}

// readBatch is the JSON array of preload batch b: four types, 100 users,
// event k stamped stamps[k].
func readBatch(nonce string, b, n int, stamps []int64) []byte {
	type ev struct {
		ID        string         `json:"id"`
		EventType string         `json:"eventType"`
		UserID    string         `json:"userId"`
		Timestamp int64          `json:"timestamp"`
		Metadata  map[string]any `json:"metadata"`
	}
	evs := make([]ev, 0, n)
	for i := range n {
		k := b*n + i
		evs = append(evs, ev{ID: "read-" + nonce + "-" + strconv.Itoa(k), EventType: fmt.Sprintf("read.%c", 'a'+k%4), UserID: fmt.Sprintf("reader-%d", k%100),
			Timestamp: stamps[k], Metadata: map[string]any{"path": "/read", "n": k, "ok": true}})
	}
	body, _ := json.Marshal(evs)
	return body
}
