package webhookbench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kilnhq/kiln/webhooks/signature"
)

// DispatchConfig says what to measure against a running Kiln.
type DispatchConfig struct {
	URL       string // the public HTTP base (ingest and the webhooks admin API)
	AdminURL  string // the admin listener, for go_goroutines and RSS
	AdminKey  string // KILN_ADMIN_KEYS entry, if set
	IngestKey string // KILN_INGEST_KEYS entry, if set
	Endpoints int
	Events    int
	Timeout   time.Duration
	// Concurrency of the baseline's direct sender (the dispatcher's
	// WEBHOOKS_CONCURRENCY default).
	Concurrency int
}

// DispatchResult is the webhook_dispatch line.
type DispatchResult struct {
	Bench            string  `json:"bench"`
	Value            float64 `json:"value"`
	Unit             string  `json:"unit"`
	Baseline         float64 `json:"baseline"`
	Ratio            float64 `json:"ratio"`
	Endpoints        int     `json:"endpoints"`
	Events           int     `json:"events"`
	Delivered        int64   `json:"delivered"`
	Duplicates       int64   `json:"duplicates"`
	BadSignatures    int64   `json:"bad_signatures"`
	Seconds          float64 `json:"seconds"`
	GoroutinesBefore int     `json:"goroutines_before"`
	GoroutinesPeak   int     `json:"goroutines_peak"`
	RSSBeforeMiB     float64 `json:"rss_before_mib"`
	RSSPeakMiB       float64 `json:"rss_peak_mib"`
	// CPUPerDelivery is the standalone's CPU (process_cpu_seconds_total)
	// from the first post to the last delivery, over the deliveries, in
	// µs: steadier than the rate on a shared machine. It includes storing
	// and projecting the events.
	CPUPerDelivery float64 `json:"cpu_us_per_delivery"`
	Target         float64 `json:"target"`
	Complete       bool    `json:"complete"`
}

// receiver counts deliveries per webhook id and checks every signature.
type receiver struct {
	mu       sync.Mutex
	secrets  map[string][]signature.Secret // by path
	seen     map[string]struct{}
	unique   atomic.Int64
	dups     atomic.Int64
	badSigs  atomic.Int64
	baseline atomic.Int64
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.URL.Path == "/baseline" {
		rc.baseline.Add(1)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	rc.mu.Lock()
	secrets := rc.secrets[r.URL.Path]
	rc.mu.Unlock()
	h := signature.Headers{ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"), Signature: r.Header.Get("webhook-signature")}
	if _, err := signature.Verify(secrets, h, body, time.Now(), 5*time.Minute); err != nil {
		rc.badSigs.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rc.mu.Lock()
	_, dup := rc.seen[h.ID]
	rc.seen[h.ID] = struct{}{}
	rc.mu.Unlock()
	if dup {
		rc.dups.Add(1)
	} else {
		rc.unique.Add(1)
	}
	w.WriteHeader(http.StatusNoContent)
}

// Dispatch creates cfg.Endpoints endpoints on a local receiver, posts
// cfg.Events events they all match, and times until every endpoint got
// every event; the baseline is the same receiver taking signed POSTs
// straight from this process with cfg.Concurrency connections.
func Dispatch(ctx context.Context, cfg DispatchConfig) (DispatchResult, error) {
	res := DispatchResult{Bench: "webhook_dispatch", Unit: "deliveries/s", Endpoints: cfg.Endpoints, Events: cfg.Events, Target: 5000}
	rc := &receiver{secrets: map[string][]signature.Secret{}, seen: make(map[string]struct{}, cfg.Endpoints*cfg.Events)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	c := &client{url: cfg.URL, http: &http.Client{Timeout: 60 * time.Second}}
	ids := make([]string, 0, cfg.Endpoints)
	defer func() {
		for _, id := range ids {
			_, _ = c.do(context.WithoutCancel(ctx), http.MethodDelete, "/webhook-endpoints/"+id, cfg.AdminKey, nil, nil)
		}
	}()
	for i := range cfg.Endpoints {
		path := "/ep/" + strconv.Itoa(i)
		var ep struct{ ID, Secret string }
		in := map[string]any{"url": base + path, "filters": []string{"bench.webhook"}, "description": "webhook_dispatch bench"}
		if code, err := c.do(ctx, http.MethodPost, "/webhook-endpoints", cfg.AdminKey, in, &ep); err != nil || code != http.StatusCreated {
			return res, fmt.Errorf("create endpoint %d: status %d: %v", i, code, err)
		}
		s, err := signature.ParseSecret(ep.Secret)
		if err != nil {
			return res, err
		}
		rc.mu.Lock()
		rc.secrets[path] = []signature.Secret{s}
		rc.mu.Unlock()
		ids = append(ids, ep.ID)
	}
	before := sample(ctx, cfg.AdminURL)
	res.GoroutinesBefore, res.RSSBeforeMiB = before.goroutines, before.rssMiB
	// Let every dispatcher see the endpoints (WEBHOOKS_ENDPOINT_REFRESH).
	time.Sleep(3 * time.Second)
	cpuBefore := sample(ctx, cfg.AdminURL).cpuSeconds

	samplerCtx, stopSampler := context.WithCancel(ctx)
	var peakG atomic.Int64
	var peakRSS atomic.Uint64
	var samplerDone sync.WaitGroup
	samplerDone.Go(func() {
		for samplerCtx.Err() == nil {
			m := sample(samplerCtx, cfg.AdminURL)
			if int64(m.goroutines) > peakG.Load() {
				peakG.Store(int64(m.goroutines))
			}
			if uint64(m.rssMiB*1024) > peakRSS.Load() {
				peakRSS.Store(uint64(m.rssMiB * 1024))
			}
			select {
			case <-samplerCtx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	})
	start := time.Now()
	now := time.Now().UnixMilli()
	for off := 0; off < cfg.Events; off += 1000 {
		n := min(1000, cfg.Events-off)
		var b bytes.Buffer
		b.WriteByte('[')
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"eventType":"bench.webhook","userId":"bench","timestamp":%d,"metadata":{"i":%d}}`, now, off+i)
		}
		b.WriteByte(']')
		if code, err := c.post(ctx, "/events", cfg.IngestKey, b.Bytes()); err != nil || code != http.StatusAccepted {
			stopSampler()
			return res, fmt.Errorf("post events: status %d: %v", code, err)
		}
	}
	want := int64(cfg.Endpoints * cfg.Events)
	deadline := time.Now().Add(cfg.Timeout)
	var last int64
	lastAt := time.Now()
	for rc.unique.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		if u := rc.unique.Load(); u != last {
			last, lastAt = u, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	if u := rc.unique.Load(); u != last {
		lastAt = time.Now()
	}
	elapsed := lastAt.Sub(start)
	cpu := sample(ctx, cfg.AdminURL).cpuSeconds - cpuBefore
	stopSampler()
	samplerDone.Wait()
	res.Delivered, res.Duplicates, res.BadSignatures = rc.unique.Load(), rc.dups.Load(), rc.badSigs.Load()
	res.Complete = res.Delivered == want
	res.Seconds = round3(elapsed.Seconds())
	res.Value = round(float64(res.Delivered) / elapsed.Seconds())
	res.GoroutinesPeak, res.RSSPeakMiB = int(peakG.Load()), round(float64(peakRSS.Load())/1024)
	if res.Delivered > 0 && cpu > 0 {
		res.CPUPerDelivery = round(cpu * 1e6 / float64(res.Delivered))
	}

	res.Baseline = round(directRate(ctx, base+"/baseline", min(want, 50_000), cfg.Concurrency, rc))
	if res.Baseline > 0 {
		res.Ratio = round3(res.Value / res.Baseline)
	}
	return res, nil
}

// directRate posts n signed requests to url with conc connections.
func directRate(ctx context.Context, url string, n int64, conc int, rc *receiver) float64 {
	secret, _ := signature.ParseSecret(signature.NewSecret())
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	hc := &http.Client{Transport: tr, Timeout: 15 * time.Second}
	defer tr.CloseIdleConnections()
	body := []byte(`{"type":"bench.webhook","timestamp":"2026-12-01T20:00:00Z","seq":1,"data":{"id":"x","eventType":"bench.webhook","userId":"bench","timestamp":1,"metadata":{"i":1},"receivedAt":1}}`)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for i := next.Add(1); i <= n && ctx.Err() == nil; i = next.Add(1) {
				id := "msg_base_" + strconv.FormatInt(i, 10)
				now := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("webhook-id", id)
				req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
				req.Header.Set("webhook-signature", signature.Sign([]signature.Secret{secret}, id, now, body))
				resp, err := hc.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	return float64(rc.baseline.Load()) / time.Since(start).Seconds()
}

// processSample is what sample reads of the standalone.
type processSample struct {
	goroutines int
	rssMiB     float64
	cpuSeconds float64
}

// sample reads go_goroutines, the RSS and the CPU time from a Prometheus
// endpoint (zero when it does not answer).
func sample(ctx context.Context, adminURL string) processSample {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, adminURL+"/metrics", nil)
	if err != nil {
		return processSample{}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return processSample{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return parseMetrics(string(b))
}

func parseMetrics(text string) processSample {
	var s processSample
	for line := range strings.SplitSeq(text, "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			s.goroutines = int(f)
		case "process_resident_memory_bytes":
			s.rssMiB = f / (1 << 20)
		case "process_cpu_seconds_total":
			s.cpuSeconds = f
		}
	}
	return s
}

type client struct {
	url  string
	http *http.Client
}

func (c *client) do(ctx context.Context, method, path, key string, in, out any) (int, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

func (c *client) post(ctx context.Context, path, key string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
