// Package burst posts a large burst of events to a running Kiln as fast as
// ingest accepts them, reads GET /events?limit=50 throughout, and then
// waits for every projection (durable consumer of EVENTS) to reach the
// stream's last sequence, reporting how long each took.
package burst

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/loadtest/internal/eventpost"
	"github.com/kilnhq/kiln/loadtest/internal/readbench"
	"github.com/kilnhq/kiln/loadtest/internal/stats"
	"github.com/kilnhq/kiln/schemas"
)

// Options configure a burst.
type Options struct {
	URL, NATSURL, APIKey string
	Events, Batch        int
	Clients              int           // concurrent posters
	Readers              int           // concurrent GET /events readers
	Timeout              time.Duration // per request
	CatchUp              time.Duration // longest wait for the projections
	Log                  *slog.Logger
}

// Result is the burst's report line.
type Result struct {
	Bench         string  `json:"bench"`
	Events        int     `json:"events"`
	Batch         int     `json:"batch"`
	PostSeconds   float64 `json:"post_s"`
	EventsPerS    float64 `json:"events_per_s"`
	Retries       int64   `json:"post_retries"`
	Reads         int     `json:"reads"`
	ReadP50Ms     float64 `json:"read_p50_ms"`
	ReadP99Ms     float64 `json:"read_p99_ms"`
	ReadMaxMs     float64 `json:"read_max_ms"`
	ReadNon200    int64   `json:"read_non_200"`
	ReadFromCache float64 `json:"read_cache_share"`
	LastSeq       uint64  `json:"last_seq"`
	// CaughtUpS is, per durable consumer, the seconds from the burst's
	// start until its ack floor reached LastSeq (-1: not within CatchUp).
	CaughtUpS map[string]float64 `json:"caught_up_s"`
}

// Run runs the burst.
func Run(ctx context.Context, o Options) (Result, error) {
	res := Result{Bench: "burst", Events: o.Events, Batch: o.Batch, CaughtUpS: map[string]float64{}}
	nc, err := nats.Connect(o.NATSURL, nats.Name("kiln-burst"))
	if err != nil {
		return res, fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return res, err
	}
	stream, err := js.Stream(ctx, schemas.StreamName)
	if err != nil {
		return res, fmt.Errorf("stream: %w", err)
	}
	post, err := eventpost.New(eventpost.Options{BaseURL: o.URL, MaxConns: o.Clients, Timeout: o.Timeout, APIKey: o.APIKey})
	if err != nil {
		return res, err
	}
	get, err := readbench.NewGetter(o.URL, o.APIKey, o.Readers, o.Timeout)
	if err != nil {
		return res, err
	}

	start := time.Now()
	readCtx, stopReads := context.WithCancel(ctx)
	var rd reads
	var wg sync.WaitGroup
	for range o.Readers {
		wg.Go(func() { rd.loop(readCtx, get) })
	}
	retries, err := postAll(ctx, post, o)
	res.Retries = retries
	res.PostSeconds = time.Since(start).Seconds()
	res.EventsPerS = float64(o.Events) / res.PostSeconds
	o.Log.Info("burst posted", "events", o.Events, "took", time.Since(start).Round(time.Millisecond), "retries", retries)
	if err != nil {
		stopReads()
		wg.Wait()
		return res, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		stopReads()
		wg.Wait()
		return res, err
	}
	res.LastSeq = info.State.LastSeq
	err = waitCaughtUp(ctx, stream, res.LastSeq, start, o, res.CaughtUpS)
	stopReads()
	wg.Wait()
	lat := stats.Merge(rd.samples()...)
	res.Reads = len(lat)
	res.ReadP50Ms, res.ReadP99Ms, res.ReadMaxMs = stats.Millis(lat.Percentile(50)), stats.Millis(lat.Percentile(99)), stats.Millis(lat.Max())
	res.ReadNon200 = rd.bad.Load()
	res.ReadFromCache = float64(rd.cache.Load()) / float64(max(res.Reads, 1))
	return res, err
}

// postAll posts Events in batches of Batch from Clients goroutines,
// retrying a batch that gets an error (its ids make the retry idempotent).
func postAll(ctx context.Context, c *eventpost.Client, o Options) (int64, error) {
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	batches := (o.Events + o.Batch - 1) / o.Batch
	var next, retries atomic.Int64
	errs := make(chan error, o.Clients)
	for range o.Clients {
		go func() {
			for {
				b := int(next.Add(1) - 1)
				if b >= batches || ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				body := batchBody(nonce, b, min(o.Batch, o.Events-b*o.Batch))
				if err := c.PostBatchRetrying(ctx, body, min(o.Batch, o.Events-b*o.Batch), 101, func() { retries.Add(1) }); err != nil {
					errs <- fmt.Errorf("batch %d: %w", b, err)
					return
				}
			}
		}()
	}
	var first error
	for range o.Clients {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return retries.Load(), first
}

func batchBody(nonce string, b, n int) []byte {
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
		k := b*1_000_000 + i
		evs[i] = ev{ID: "burst-" + nonce + "-" + strconv.Itoa(k), EventType: fmt.Sprintf("burst.%c", 'a'+k%4),
			UserID: "burst-user-" + strconv.Itoa(k%1000), Timestamp: now, Metadata: map[string]any{"n": k}}
	}
	body, _ := json.Marshal(evs)
	return body
}

// reads are the GET /events answers during the burst.
type reads struct {
	mu         sync.Mutex
	all        []*stats.Samples
	bad, cache atomic.Int64
}

func (r *reads) loop(ctx context.Context, g *readbench.Getter) {
	s := stats.NewSamples(1 << 14)
	for ctx.Err() == nil {
		t := time.Now()
		a, err := g.Get("/events?limit=50")
		s.Add(time.Since(t))
		if err != nil {
			r.bad.Add(1)
		}
		if a.Source == "cache" {
			r.cache.Add(1)
		}
	}
	r.mu.Lock()
	r.all = append(r.all, s)
	r.mu.Unlock()
}

func (r *reads) samples() []*stats.Samples {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all
}

// waitCaughtUp polls every durable consumer of the stream until its ack
// floor reaches lastSeq, recording when each did.
func waitCaughtUp(ctx context.Context, stream jetstream.Stream, lastSeq uint64, start time.Time, o Options, out map[string]float64) error {
	deadline := time.Now().Add(o.CatchUp)
	lastLog := time.Now()
	for {
		pending := 0
		for name := range stream.ConsumerNames(ctx).Name() {
			if _, done := out[name]; done {
				continue
			}
			cons, err := stream.Consumer(ctx, name)
			if err != nil {
				continue
			}
			info, err := cons.Info(ctx)
			if err != nil || info.Config.Durable == "" {
				continue
			}
			if info.AckFloor.Stream >= lastSeq {
				out[name] = time.Since(start).Seconds()
				o.Log.Info("caught up", "consumer", name, "after", time.Since(start).Round(time.Millisecond))
				continue
			}
			pending++
			if time.Since(lastLog) > 10*time.Second {
				o.Log.Info("catching up", "consumer", name, "ackFloor", info.AckFloor.Stream, "lastSeq", lastSeq)
			}
		}
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("not every projection caught up within the wait")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
