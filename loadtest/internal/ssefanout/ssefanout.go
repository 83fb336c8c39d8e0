// Package ssefanout is kiln-load's sse_fanout benchmark: many GET /stream
// clients at once while events are posted to POST /events at a fixed rate.
// Narrow clients each follow one event type that gets about one event per
// second; wide clients take the whole stream. It reports the offered and
// stored rates, the event frames delivered per second, the POST→frame
// latency over every delivered frame, the clients the server dropped, and
// the gateway's resident memory per idle client (from /proc, when the
// gateway's process id is given and it runs apart from the load tool).
package ssefanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kilnhq/kiln/loadtest/internal/eventpost"
	"github.com/kilnhq/kiln/loadtest/internal/report"
	"github.com/kilnhq/kiln/loadtest/internal/stats"
)

// Bench is the name of the result line.
const Bench = "sse_fanout"

// Options configure one run.
type Options struct {
	URL string // Kiln's base URL: POST /events (and GET /stream)
	// StreamURL is the base URL of the gateway the clients connect to
	// (GET /stream); empty is URL.
	StreamURL string
	APIKey    string // sent as a bearer token when set
	// Narrow clients each follow one event type of their own
	// (?type=ssebench.n<i>) that is posted once per second; Wide clients
	// take the whole stream.
	Narrow, Wide int
	// Rate is the offered events per second, Narrow of them to the narrow
	// clients' types and the rest to ssebench.bulk.
	Rate             float64
	Warmup, Duration time.Duration
	Timeout          time.Duration // per POST and per connect
	// GatewayPID is the process serving GET /stream, whose resident memory
	// is read from /proc/<pid>/status before and after the clients connect;
	// 0 skips the memory measurement.
	GatewayPID int
	Log        *slog.Logger
}

// Result is the sse_fanout line. RSS fields are left out without a
// gateway process id.
type Result struct {
	Bench             string      `json:"bench"`
	Clients           int         `json:"clients"`
	NarrowClients     int         `json:"narrow_clients"`
	WideClients       int         `json:"wide_clients"`
	OfferedEventsPerS report.Rate `json:"offered_events_per_s"`
	// EventsPerS is the events stored per second (202 answers).
	EventsPerS report.Rate `json:"events_per_s"`
	// FramesPerS is the event frames the clients received per second, for
	// events posted in the measured window; ExpectedFramesPerS is what
	// they would get without loss.
	FramesPerS         report.Rate   `json:"frames_per_s"`
	ExpectedFramesPerS report.Rate   `json:"expected_frames_per_s"`
	P50Ms              report.Millis `json:"p50_ms"`
	P99Ms              report.Millis `json:"p99_ms"`
	MaxMs              report.Millis `json:"max_ms"`
	// ReceivedP99Ms is the p99 from the event's receivedAt (stamped by
	// ingest when the POST arrived, in ms) to the frame: POST→frame less
	// the time the POST waited in the load tool and on the way in.
	ReceivedP99Ms report.Millis `json:"received_p99_ms"`
	// Dropped is the clients whose stream ended before the run did (the
	// server's slow-consumer drop or any other end); Missed the events
	// the wide clients skipped (gaps in the frame ids).
	Dropped    int   `json:"dropped"`
	Missed     int64 `json:"missed"`
	PostErrors int64 `json:"post_errors"`
	// The gateway's VmRSS before and after the clients connected (idle,
	// before any event is posted), and the growth per client between
	// half and all of them connected (the first half absorbs the heap's
	// free space, which would hide their cost).
	RSSBeforeKiB         *int64   `json:"rss_before_kib,omitempty"`
	RSSIdleKiB           *int64   `json:"rss_idle_clients_kib,omitempty"`
	RSSPerIdleClientKiB  *float64 `json:"rss_per_idle_client_kib,omitempty"`
	RSSUnderLoadKiB      *int64   `json:"rss_under_load_kib,omitempty"`
	ConnectMs            int64    `json:"connect_ms"`
	MeasuredEventsPosted int64    `json:"measured_events_posted"`
}

// Validate names the first bad option.
func (o Options) Validate() error {
	var errs []error
	if o.Narrow < 0 || o.Wide < 0 || o.Narrow+o.Wide == 0 || o.Narrow+o.Wide > 50_000 {
		errs = append(errs, fmt.Errorf("sse_fanout: want 1 to 50000 clients, got %d narrow and %d wide", o.Narrow, o.Wide))
	}
	if !(o.Rate >= 1 && o.Rate <= 1_000_000) || float64(o.Narrow) > o.Rate {
		errs = append(errs, fmt.Errorf("sse_fanout: rate %g must be between 1 and 1000000 and at least the %d narrow clients (one event/s each)", o.Rate, o.Narrow))
	}
	if o.Duration < time.Second {
		errs = append(errs, fmt.Errorf("sse_fanout: duration %s must be at least 1s", o.Duration))
	}
	return errors.Join(errs...)
}

// Run connects the clients, measures the gateway's memory with them idle,
// posts events at Rate for Warmup+Duration and reports.
func Run(ctx context.Context, o Options) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := Result{Bench: Bench, Clients: o.Narrow + o.Wide, NarrowClients: o.Narrow, WideClients: o.Wide,
		OfferedEventsPerS: report.Rate(o.Rate)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var rssBefore int64
	if o.GatewayPID > 0 {
		var err error
		if rssBefore, err = settledRSS(ctx, o.GatewayPID); err != nil {
			return res, err
		}
		res.RSSBeforeKiB = &rssBefore
	}

	// Measurement window, by the events' send time: set before the load.
	w := &window{}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true,
		ResponseHeaderTimeout: o.Timeout}}
	defer hc.CloseIdleConnections()
	clients := make([]*client, 0, o.Narrow+o.Wide)
	for i := range o.Narrow {
		clients = append(clients, &client{query: "type=" + narrowType(i) + "&alerts=0", win: w})
	}
	for range o.Wide {
		clients = append(clients, &client{query: "alerts=0", wide: true, win: w})
	}
	start := time.Now()
	log.Info("sse_fanout: connecting", "narrow", o.Narrow, "wide", o.Wide)
	half := len(clients) / 2
	if err := connectAll(ctx, hc, o, clients[:half]); err != nil {
		return res, err
	}
	var rssHalf int64
	if o.GatewayPID > 0 && half > 0 {
		var err error
		if rssHalf, err = settledRSS(ctx, o.GatewayPID); err != nil {
			closeAll(clients[:half])
			return res, err
		}
	}
	if err := connectAll(ctx, hc, o, clients[half:]); err != nil {
		closeAll(clients[:half])
		return res, err
	}
	res.ConnectMs = time.Since(start).Milliseconds()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { c.read() })
	}
	defer func() {
		for _, c := range clients {
			c.close()
		}
		wg.Wait()
	}()

	if o.GatewayPID > 0 {
		// The clients are idle: no events yet.
		idle, err := settledRSS(ctx, o.GatewayPID)
		if err != nil {
			return res, err
		}
		per := float64(idle-rssHalf) / float64(len(clients)-half)
		if half == 0 {
			per = float64(idle-rssBefore) / float64(len(clients))
		}
		res.RSSIdleKiB, res.RSSPerIdleClientKiB = &idle, &per
		log.Info("sse_fanout: idle clients connected", "rss_before_kib", rssBefore, "rss_half_kib", rssHalf,
			"rss_kib", idle, "per_client_kib", per)
	}

	post, err := eventpost.New(eventpost.Options{BaseURL: o.URL, MaxConns: posters, Timeout: o.Timeout, APIKey: o.APIKey})
	if err != nil {
		return res, err
	}
	now := time.Now()
	w.set(now.Add(o.Warmup), now.Add(o.Warmup+o.Duration))
	log.Info("sse_fanout: posting", "rate", o.Rate, "warmup", o.Warmup, "duration", o.Duration)
	load := postLoad(ctx, post, o, w)
	if o.GatewayPID > 0 {
		if rss, err := readRSS(o.GatewayPID); err == nil {
			res.RSSUnderLoadKiB = &rss
		}
	}
	expected := int64(load.narrowStored) + int64(o.Wide)*load.stored
	awaitFrames(ctx, clients, expected)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}

	var frames, missed int64
	parts := make([]*stats.Samples, 0, len(clients))
	storedParts := make([]*stats.Samples, 0, len(clients))
	for _, c := range clients {
		c.mu.Lock()
		frames += c.measured
		missed += c.missed
		if c.ended {
			res.Dropped++
		}
		parts = append(parts, c.samples)
		storedParts = append(storedParts, c.stored)
		c.mu.Unlock()
	}
	lat := stats.Merge(parts...)
	secs := o.Duration.Seconds()
	res.EventsPerS = report.Rate(float64(load.stored) / secs)
	res.MeasuredEventsPosted = load.stored
	res.FramesPerS = report.Rate(float64(frames) / secs)
	res.ExpectedFramesPerS = report.Rate(float64(expected) / secs)
	res.P50Ms = report.Millis(stats.Millis(lat.Percentile(50)))
	res.P99Ms = report.Millis(stats.Millis(lat.Percentile(99)))
	res.MaxMs = report.Millis(stats.Millis(lat.Max()))
	res.ReceivedP99Ms = report.Millis(stats.Millis(stats.Merge(storedParts...).Percentile(99)))
	res.Missed = missed
	res.PostErrors = load.errors
	return res, nil
}

// narrowType is narrow client i's event type.
func narrowType(i int) string { return "ssebench.n" + strconv.Itoa(i) }

// bulkType is the type of the events no narrow client follows.
const bulkType = "ssebench.bulk"

// EventTypes is the pattern of every event type the benchmark posts.
const EventTypes = "ssebench.>"

// connectAll opens every client's stream, a few at a time, and waits for
// each one's connected frame.
func connectAll(ctx context.Context, hc *http.Client, o Options, clients []*client) error {
	const parallel = 32
	sem := make(chan struct{}, parallel)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for _, c := range clients {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := c.connect(ctx, hc, o); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		closeAll(clients)
	}
	return first
}

func closeAll(clients []*client) {
	for _, c := range clients {
		c.close()
	}
}

// awaitFrames waits, after the load, until the clients have received the
// expected measured frames, or none for two seconds (at most fifteen).
func awaitFrames(ctx context.Context, clients []*client, expected int64) {
	total := func() int64 {
		var n int64
		for _, c := range clients {
			c.mu.Lock()
			n += c.measured
			c.mu.Unlock()
		}
		return n
	}
	last, progress, deadline := total(), time.Now(), time.Now().Add(15*time.Second)
	for last < expected && time.Now().Before(deadline) && time.Since(progress) < 2*time.Second {
		if sleep(ctx, 50*time.Millisecond) != nil {
			return
		}
		if n := total(); n != last {
			last, progress = n, time.Now()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// window is the measured span of send times; frames of events sent
// outside it are not measured.
type window struct {
	from, to atomic.Int64 // Unix ns; zero until set
}

func (w *window) set(from, to time.Time) {
	w.to.Store(to.UnixNano())
	w.from.Store(from.UnixNano())
}

func (w *window) contains(sentAt int64) bool {
	from := w.from.Load()
	return from != 0 && sentAt >= from && sentAt < w.to.Load()
}

// errNotStream is an answer to GET /stream that is not an event stream.
var errNotStream = errors.New("GET /stream did not answer with an event stream")

// hasPrefix is strings.HasPrefix for a line read as bytes.
func hasPrefix(line []byte, prefix string) bool {
	return len(line) >= len(prefix) && string(line[:len(prefix)]) == prefix
}

// trimEOL drops the line's "\n" or "\r\n".
func trimEOL(line []byte) []byte {
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}
