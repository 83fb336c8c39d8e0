package dashboard_test

// The browser harness: a headless Debian Chromium driven over the DevTools
// protocol (chromedp) against a real standalone Kiln, plus an HTTP client
// that posts events the way applications do.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromiumPath finds the browser: $CHROMIUM, else chromium or
// chromium-browser on PATH. Without one the browser tests skip, except in
// CI (CI=true), where .ci/run installs Debian's chromium and a missing
// browser is a failure.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH: .ci/run installs the Debian package chromium")
	}
	t.Skip("no chromium on PATH (apt-get install chromium, or set CHROMIUM)")
	return ""
}

// browser is one headless Chromium for a test.
type browser struct {
	t     *testing.T
	alloc context.Context // the allocator
	first context.Context // the first tab: later tabs are its children, in the same browser
}

// startBrowser launches Chromium with a fresh profile. The networking
// flags keep it from calling home, which on a closed network makes its
// connections fail.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	return &browser{t: t, alloc: alloc}
}

// tab is one browser tab.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// newTab opens a tab (the first one starts the browser). listeners see the
// tab's protocol events from its start.
func (b *browser) newTab(listeners ...func(ev any)) *tab {
	b.t.Helper()
	var opts []chromedp.ContextOption
	for _, l := range listeners {
		opts = append(opts, chromedp.WithListener(l))
	}
	parent := b.first
	if parent == nil {
		parent = b.alloc
	}
	ctx, cancel := chromedp.NewContext(parent, opts...)
	b.t.Cleanup(cancel)
	require.NoError(b.t, chromedp.Do(ctx), "open a tab")
	if b.first == nil {
		b.first = ctx
	}
	return &tab{t: b.t, ctx: ctx}
}

// with is the same tab reporting to t (a subtest).
func (tb *tab) with(t *testing.T) *tab { return &tab{t: t, ctx: tb.ctx} }

// do runs actions with a time limit.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Minute)
	defer cancel()
	require.NoError(tb.t, chromedp.Do(ctx, actions...))
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	v, err := tryEval[T](tb, expr)
	require.NoError(tb.t, err, "evaluate %s", expr)
	return v
}

func tryEval[T any](tb *tab, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, time.Minute)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// call sends one protocol command to the tab.
func call[P, R any](tb *tab, cmd cdp.Command[P, R], params P) R {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, time.Minute)
	defer cancel()
	r, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) (R, error) {
		return cdp.Call(ctx, t, cmd, params)
	})
	require.NoError(tb.t, err, "%s", cmd.Method)
	return r
}

// waitJS waits until the expression is true in the page.
func (tb *tab) waitJS(expr string, within time.Duration, msg string) {
	tb.t.Helper()
	var last error
	ok := assertEventually(within, func() bool {
		v, err := tryEval[bool](tb, expr)
		last = err
		return err == nil && v
	})
	if !ok {
		diag, _ := tryEval[string](tb, `JSON.stringify({state: document.body.dataset.state, lastSeq: document.body.dataset.lastSeq,
			reconnects: document.body.dataset.reconnects, disconnect: document.getElementById('h-disconnect')?.textContent,
			top: [...document.querySelectorAll('#events-body tr')].slice(0, 5).map((r) => r.dataset.seq),
			rows: document.querySelectorAll('#events-body tr').length, active: document.activeElement?.outerHTML?.slice(0, 80)})`)
		tb.t.Fatalf("%s: not within %s (waited for %s; last error %v)\npage: %s", msg, within, expr, last, diag)
	}
}

// assertEventually polls cond every 25 ms until it holds or within passes.
func assertEventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// tableSeqs are the seq attributes of the live table's rows, top to bottom.
func tableSeqs(tb *tab) []int64 {
	tb.t.Helper()
	return eval[[]int64](tb, `[...document.querySelectorAll('#events-body tr')].map((r) => Number(r.dataset.seq))`)
}

// tableTypes are the event types of the live table's rows.
func tableTypes(tb *tab) []string {
	tb.t.Helper()
	return eval[[]string](tb, `[...document.querySelectorAll('#events-body tr')].map((r) => r.dataset.type)`)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// poster posts events to a Kiln over HTTP and remembers the seq of each.
type poster struct {
	base   string
	client *http.Client
	mu     sync.Mutex
	seqs   []int64
	n      int
}

func newPoster(base string) *poster {
	return &poster{base: base, client: &http.Client{Timeout: 10 * time.Second}}
}

// event is the body of one posted event.
type event struct {
	ID        string         `json:"id"`
	EventType string         `json:"eventType"`
	UserID    string         `json:"userId"`
	Timestamp int64          `json:"timestamp"`
	Metadata  map[string]any `json:"metadata,omitempty"`
}

// make builds an event with a fresh client id.
func (p *poster) make(typ, user string) event {
	p.mu.Lock()
	p.n++
	n := p.n
	p.mu.Unlock()
	return event{
		ID: fmt.Sprintf("browser-%d-%d", time.Now().UnixNano(), n), EventType: typ, UserID: user,
		Timestamp: time.Now().UnixMilli(), Metadata: map[string]any{"n": n, "path": "/checkout", "amount": 10 + n%90, "currency": "EUR"},
	}
}

// batchResult is one item of a batch answer.
type batchResult struct {
	Seq       int64 `json:"seq"`
	Duplicate bool  `json:"duplicate"`
	Error     any   `json:"error"`
}

// post sends events as one JSON array and returns their seqs in order.
// It retries while the server is unreachable or unavailable (a restart):
// the client ids make a retry idempotent.
func (p *poster) post(ctx context.Context, evs []event) ([]int64, error) {
	body, err := json.Marshal(evs)
	if err != nil {
		return nil, err
	}
	for {
		seqs, retry, err := p.try(ctx, body, len(evs))
		if err == nil {
			p.mu.Lock()
			p.seqs = append(p.seqs, seqs...)
			p.mu.Unlock()
			return seqs, nil
		}
		if !retry {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *poster) try(ctx context.Context, body []byte, n int) (seqs []int64, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/events", bytes.NewReader(body))
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := p.client.Do(req)
	if err != nil {
		return nil, ctx.Err() == nil, err
	}
	defer res.Body.Close()
	var out struct {
		Results []batchResult `json:"results"`
	}
	decodeErr := json.NewDecoder(res.Body).Decode(&out)
	switch {
	case res.StatusCode == http.StatusServiceUnavailable || res.StatusCode == http.StatusTooManyRequests:
		return nil, true, fmt.Errorf("POST /events: %s", res.Status)
	case res.StatusCode != http.StatusAccepted:
		return nil, false, fmt.Errorf("POST /events: %s", res.Status)
	case decodeErr != nil:
		return nil, false, fmt.Errorf("POST /events answer: %w", decodeErr)
	case len(out.Results) != n:
		return nil, false, fmt.Errorf("POST /events: %d results for %d events", len(out.Results), n)
	}
	for i, r := range out.Results {
		if r.Error != nil || r.Seq <= 0 {
			return nil, false, fmt.Errorf("POST /events: item %d: %v", i, r.Error)
		}
		seqs = append(seqs, r.Seq)
	}
	return seqs, false, nil
}

// mustPost posts events and fails the test on error.
func (p *poster) mustPost(t *testing.T, evs ...event) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seqs, err := p.post(ctx, evs)
	require.NoError(t, err)
	return seqs
}

// many makes n events cycling through types.
func (p *poster) many(n int, types ...string) []event {
	evs := make([]event, n)
	for i := range evs {
		evs[i] = p.make(types[i%len(types)], fmt.Sprintf("user-%d", i%7))
	}
	return evs
}

// jsonLine prints one machine-readable result line (as kiln-load does).
func jsonLine(t *testing.T, v map[string]any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	t.Log(string(b))
	fmt.Println(string(b))
}

// containsAll reports whether every want is in got.
func containsAll(got []int64, want []int64) bool {
	set := make(map[int64]bool, len(got))
	for _, s := range got {
		set[s] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

// join formats seqs compactly for messages.
func join(seqs []int64) string {
	var b strings.Builder
	for i, s := range seqs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, s)
	}
	return b.String()
}

// acknowledged are the seqs of every event posted so far, ascending.
func (p *poster) acknowledged() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := append([]int64(nil), p.seqs...)
	slices.Sort(s)
	return s
}
