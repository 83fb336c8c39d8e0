package dashboard_test

// The dashboard in a real headless Chromium against a real standalone Kiln:
// the acceptance of the dashboard issue, one scenario per subtest. The
// subtests share one Kiln and one page, in order, as an on-call engineer
// would use them.

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	"github.com/kilnhq/kiln/notifier/slacktest"
	"github.com/kilnhq/kiln/testsupport"
)

// seenWithin bounds the wait for posted events to show. The issue's
// acceptance (within 2 s of the POST's answer) is measured and printed as
// the dashboard_table_latency line, not asserted: on a loaded CI machine a
// clock measures the machine, and a test must fail only when the events
// never show.
const seenWithin = time.Minute

// kiln is a standalone Kiln that can be restarted on the same ports with
// the same data.
type kiln struct {
	t    *testing.T
	dir  string
	env  []string
	in   *standalonetest.Instance
	base string
}

func startKiln(t *testing.T, extra ...string) *kiln {
	t.Helper()
	port := strconv.Itoa(testsupport.FreePort(t))
	k := &kiln{t: t, dir: t.TempDir()}
	k.env = append([]string{
		"PORT", port,
		"ADMIN_PORT", strconv.Itoa(testsupport.FreePort(t)),
		"NATS_PORT", strconv.Itoa(testsupport.FreePort(t)),
		"MONGO_PORT", strconv.Itoa(testsupport.FreePort(t)),
		"MONGO_URI", testsupport.StartMongo(t).URI(),
		"REDIS_URL", testsupport.StartRedis(t).URL(),
		"GATEWAY_SSE_METRICS_INTERVAL", "500ms",
	}, extra...)
	k.in = standalonetest.Start(t, k.dir, k.env...)
	k.base = k.in.Base
	return k
}

// restart stops the whole standalone (gateway included) and starts it
// again on the same port, stream and stores.
func (k *kiln) restart() {
	k.t.Helper()
	k.in.Stop(k.t)
	k.in = standalonetest.Start(k.t, k.dir, k.env...)
	require.Equal(k.t, k.base, k.in.Base)
}

func TestDashboardInBrowser(t *testing.T) {
	b := startBrowser(t) // skips before starting Kiln when there is no browser
	slack := slacktest.Start(t)
	// The notifier runs the built-in example rules; alerts go to the log
	// and to a stand-in Slack.
	k := startKiln(t, "SLACK_WEBHOOK_URL", slack.URL, "NOTIFIER_BACKOFF_BASE", "100ms")
	p := newPoster(k.base)

	// Some history before the page opens: the table starts from GET /events.
	before := p.mustPost(t, p.many(5, "boot.check")...)

	var net netLog
	page := b.newTab(net.listen)
	call(page, network.Enable, network.EnableParams{})
	call(page, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true})
	// The budget is for gzip: ask for it, as a browser without brotli would.
	call(page, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Encoding": "gzip"}})
	// The dashboard's own look is dark; headless Chromium would ask for light.
	call(page, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	})
	page.do(chromedp.Navigate(k.base + "/"))
	page.waitJS(`document.body.dataset.state === 'live'`, time.Minute, "the stream connects")
	page.waitJS(`document.querySelectorAll('#events-body tr').length === 5`, time.Minute, "the history loads")
	require.Equal(t, reversed(before), tableSeqs(page), "history rows, newest first")

	t.Run("first load transfers at most 300 KiB of JS and CSS", func(t *testing.T) {
		page := page.with(t)
		firstLoadBudget(t, page, &net)
	})

	t.Run("posted events appear with counts and chart", func(t *testing.T) {
		page := page.with(t)
		evs := p.many(50, "cart.add", "cart.checkout", "page.view", "user.signup")
		start := time.Now()
		seqs := p.mustPost(t, evs...)
		page.waitJS(`(() => { const shown = new Set([...document.querySelectorAll('#events-body tr')].map((r) => Number(r.dataset.seq)));
			return `+jsArray(seqs)+`.every((s) => shown.has(s)); })()`, seenWithin, "all 50 events in the table")
		jsonLine(t, map[string]any{"bench": "dashboard_table_latency", "value": time.Since(start).Milliseconds(), "unit": "ms", "events": len(seqs), "target": 2000})
		got := tableSeqs(page)
		require.Equal(t, reversed(append(slices.Clone(before), seqs...)), got, "newest first, each seq once")

		want := map[string]int{}
		for _, e := range evs {
			want[e.EventType]++
		}
		for typ, n := range want {
			page.waitJS(`document.querySelector('#counts-body tr[data-type=`+jsString(typ)+`] td.all')?.textContent === `+jsString(strconv.Itoa(n)),
				time.Minute, "the all-time count of "+typ)
		}
		page.waitJS(`Number(document.getElementById('chart').dataset.liveSum) >= 50`, time.Minute, "the chart counts received events")
		page.waitJS(`Number(document.getElementById('chart').dataset.minuteSum) >= 55`, time.Minute, "the chart has the server's per-minute counts")
		page.waitJS(`/^\d+(\.\d+)?$/.test(document.querySelector('#chart .u-legend .u-series:nth-child(3) .u-value')?.textContent)`,
			time.Minute, "the legend shows the latest per-minute rate")
		page.waitJS(`document.getElementById('fact-seq').textContent === `+jsString(strconv.FormatInt(seqs[len(seqs)-1], 10)), time.Minute, "the last seq is shown")
	})

	t.Run("a row opens its JSON and the keyboard moves between rows", func(t *testing.T) {
		page := page.with(t)
		page.do(chromedp.Click(chromedp.CSS(`#events-body tr:nth-child(2)`)))
		page.waitJS(`document.getElementById('detail').open`, time.Minute, "the detail dialog opens")
		detail := eval[string](page, `document.getElementById('detail-json').textContent`)
		seq := eval[int64](page, `Number(document.querySelector('#events-body tr:nth-child(2)').dataset.seq)`)
		require.Contains(t, detail, `"seq": `+strconv.FormatInt(seq, 10))
		require.Contains(t, detail, `"metadata"`)
		page.do(chromedp.KeyEvent(kb.Escape))
		page.waitJS(`!document.getElementById('detail').open`, time.Minute, "Escape closes the dialog")
		page.waitJS(`document.activeElement === document.querySelector('#events-body tr:nth-child(2)')`, time.Minute, "focus returns to the row")
		// The row's next sibling, not a position: a live event arriving
		// meanwhile prepends a row and shifts the positions.
		_ = eval[bool](page, `(window.kilnFocusedRow = document.activeElement) !== null`)
		page.do(chromedp.KeyEvent(kb.ArrowDown))
		page.waitJS(`document.activeElement === window.kilnFocusedRow.nextElementSibling`, time.Minute, "ArrowDown moves to the next row")
		page.do(chromedp.KeyEvent(kb.Home))
		page.waitJS(`document.activeElement === document.querySelector('#events-body tr')`, time.Minute, "Home moves to the first row")
		page.do(chromedp.KeyEvent(kb.Enter))
		page.waitJS(`document.getElementById('detail').open && document.getElementById('detail-title').textContent.includes('seq '+document.querySelector('#events-body tr').dataset.seq)`,
			time.Minute, "Enter on the first row opens its JSON")
		page.do(chromedp.KeyEvent(kb.Escape))
		page.waitJS(`!document.getElementById('detail').open`, time.Minute, "Escape closes the dialog")

		// A key pressed right after the dialog closed, before its close
		// event (which comes a task later): the move stands, focus is not
		// taken back to the row the dialog was opened from. Done in one
		// task, so the order is certain; under load a real Esc and
		// ArrowDown came in this order too.
		require.True(t, eval[bool](page, `(() => {
			const d = document.getElementById('detail'), first = document.querySelector('#events-body tr');
			first.click();
			window.kilnClosed = false;
			d.addEventListener('close', () => { window.kilnClosed = true; }, {once: true});
			d.close();
			document.activeElement.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowDown', bubbles: true, cancelable: true}));
			window.kilnMovedTo = document.activeElement;
			return kilnMovedTo === first.nextElementSibling; })()`), "ArrowDown right after the dialog closed moves to the next row")
		page.waitJS(`window.kilnClosed === true`, time.Minute, "the dialog's close event is handled")
		require.True(t, eval[bool](page, `document.activeElement === window.kilnMovedTo`), "focus stays where the key moved it")
	})

	t.Run("pause holds new rows and resume shows them", func(t *testing.T) {
		page := page.with(t)
		page.do(chromedp.Click(chromedp.ID("pause")))
		page.waitJS(`document.body.dataset.state === 'paused'`, time.Minute, "the badge says paused")
		seqs := p.mustPost(t, p.many(5, "cart.add")...)
		last := strconv.FormatInt(seqs[len(seqs)-1], 10)
		page.waitJS(`document.body.dataset.lastSeq === '`+last+`'`, time.Minute, "the stream still receives")
		require.False(t, containsAny(tableSeqs(page), seqs), "paused: no new rows")
		require.Contains(t, eval[string](page, `document.getElementById('events-note').textContent`), "paused, 5 new")
		page.do(chromedp.Click(chromedp.ID("pause")))
		page.waitJS(`document.querySelector('#events-body tr').dataset.seq === '`+last+`'`, time.Minute, "resumed: the held rows show")
		require.True(t, containsAll(tableSeqs(page), seqs))
	})

	t.Run("a wildcard type filter shows only matching rows and is in the URL", func(t *testing.T) {
		page := page.with(t)
		typeFilter(t, page, p)
	})

	t.Run("a plain EventSource receives events", func(t *testing.T) {
		plainEventSource(t, b, k, p)
	})

	t.Run("an alert fired by a rule appears in the alerts panel with its deliveries", func(t *testing.T) {
		page := page.with(t)
		alertPanel(t, page, p, slack)
	})

	t.Run("orders and chat posted over HTTP show live in their panels", func(t *testing.T) {
		page := page.with(t)
		ordersAndChat(t, page, p)
	})

	t.Run("the table continues across a restart with no missing or duplicate seq", func(t *testing.T) {
		page := page.with(t)
		acrossRestart(t, page, k, p)
	})

	t.Run("screenshots under load", func(t *testing.T) {
		page := page.with(t)
		screenshots(t, page, p)
	})
}

// typeFilter applies "cart.*" (and then "cart.>" with a user) through the
// form and checks the rows, the URL and that the live stream is filtered.
func typeFilter(t *testing.T, page *tab, p *poster) {
	eval[bool](page, `document.getElementById('f-type').value = ''; true`)
	page.do(
		chromedp.SendKeys(chromedp.ID("f-type"), "cart.*"),
		chromedp.Click(chromedp.CSS(`#filters button[type=submit]`)),
	)
	page.waitJS(`location.search === '?type=cart.*'`, time.Minute, "the URL carries the filter")
	page.waitJS(`document.body.dataset.state === 'live' && document.querySelectorAll('#events-body tr').length > 0`, time.Minute, "the filtered view loads")
	for _, typ := range tableTypes(page) {
		require.Contains(t, []string{"cart.add", "cart.checkout"}, typ)
	}
	evs := p.many(20, "cart.add", "page.view", "cart.checkout", "cart.add.bulk", "carts.add")
	seqs := p.mustPost(t, evs...)
	var match, other []int64
	for i, e := range evs {
		if e.EventType == "cart.add" || e.EventType == "cart.checkout" {
			match = append(match, seqs[i])
		} else {
			other = append(other, seqs[i])
		}
	}
	page.waitJS(`document.querySelector('#events-body tr').dataset.seq === '`+strconv.FormatInt(match[len(match)-1], 10)+`'`,
		seenWithin, "the matching live events show")
	shown := tableSeqs(page)
	require.True(t, containsAll(shown, match), "every matching event")
	require.False(t, containsAny(shown, other), "no other event")
	require.Equal(t, "cart.*", eval[string](page, `document.getElementById('f-type').value`))
	require.Positive(t, eval[int](page, `document.querySelectorAll('#counts-body tr.selected').length`), "matching types are marked in the counts")

	// A shared URL opens the same view: "cart.>" for one user.
	page.do(chromedp.Navigate(strings.TrimSuffix(p.base, "/") + "/?type=cart.%3E&userId=user-3"))
	page.waitJS(`document.body.dataset.state === 'live'`, time.Minute, "the shared view connects")
	require.Equal(t, "cart.>", eval[string](page, `document.getElementById('f-type').value`))
	require.Equal(t, "user-3", eval[string](page, `document.getElementById('f-user').value`))
	more := p.mustPost(t, p.make("cart.add.bulk", "user-3"), p.make("cart.add", "user-4"), p.make("page.view", "user-3"))
	page.waitJS(`document.querySelector('#events-body tr')?.dataset.seq === '`+strconv.FormatInt(more[0], 10)+`'`, seenWithin, "cart.add.bulk for user-3 shows")
	rows := eval[[]map[string]string](page, `[...document.querySelectorAll('#events-body tr')].map((r) => ({type: r.dataset.type, user: r.querySelector('td.user').textContent}))`)
	for _, r := range rows {
		require.Equal(t, "user-3", r["user"])
		require.True(t, strings.HasPrefix(r["type"], "cart."), r["type"])
	}
	require.False(t, containsAny(tableSeqs(page), more[1:]))

	// Clear: back to everything, URL without a query.
	page.do(chromedp.Click(chromedp.ID("f-clear")))
	page.waitJS(`location.search === '' && document.body.dataset.state === 'live'`, time.Minute, "Clear removes the filter")
	page.waitJS(`document.querySelector('#events-body tr')?.dataset.seq === '`+strconv.FormatInt(more[2], 10)+`'`, time.Minute, "all events again")
}

// alertPanel crosses the example rule payment-failed-burst (more than 5
// payment.failed for one user within a minute) and waits for the alert in
// the panel, sooner than the panel's 15 s poll: it comes on the stream.
func alertPanel(t *testing.T, page *tab, p *poster, slack *slacktest.Server) {
	ts := time.Now().UnixMilli()
	evs := make([]event, 6)
	for i := range evs {
		evs[i] = p.make("payment.failed", "card-tester")
		evs[i].Timestamp = ts // one window, whatever the clock
	}
	seqs := p.mustPost(t, evs...)
	sel := `document.querySelector('#alerts-list li[data-rule="payment-failed-burst"]')`
	page.waitJS(sel+` !== null`, time.Minute, "the alert is in the panel")
	page.waitJS(sel+`.classList.contains('status-sent')`, time.Minute, "its deliveries are sent")
	chips := eval[[]string](page, `[...`+sel+`.querySelectorAll('.channels .chip')].map((c) => c.textContent)`)
	require.ElementsMatch(t, []string{"log: sent", "slack: sent"}, chips)
	text := eval[string](page, sel+`.textContent`)
	require.Contains(t, text, "card-tester")
	require.Contains(t, text, "event seq "+strconv.FormatInt(seqs[5], 10))
	require.Contains(t, eval[string](page, `document.getElementById('alerts-note').textContent`), "1 recent")
	require.Eventually(t, func() bool { return len(slack.Delivered()) >= 1 }, 3*time.Minute, 20*time.Millisecond)
	require.Contains(t, slack.Delivered()[0].Text, "card-tester")
}

// acrossRestart keeps posting while the standalone restarts and checks the
// table's seqs against what the server acknowledged.
func acrossRestart(t *testing.T, page *tab, k *kiln, p *poster) {
	reconnects := eval[string](page, `document.body.dataset.reconnects`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var phase []int64
	var postErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			seqs, err := p.post(ctx, p.many(2, "flow.tick", "flow.tock"))
			if err != nil {
				if ctx.Err() == nil {
					mu.Lock()
					postErr = err
					mu.Unlock()
				}
				return
			}
			mu.Lock()
			phase = append(phase, seqs...)
			mu.Unlock()
			select { // about 20 events/s: the whole phase stays under the table's 500 rows
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	posted := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(phase)
	}
	require.Eventually(t, func() bool { return posted() >= 10 }, 3*time.Minute, 10*time.Millisecond, "events flow before the restart")
	k.restart()
	page.waitJS(`document.body.dataset.reconnects !== '`+reconnects+`' && document.body.dataset.state === 'live'`,
		time.Minute, "the page reconnects after the restart")
	n := posted()
	require.Eventually(t, func() bool { return posted() >= n+10 }, 3*time.Minute, 10*time.Millisecond, "events flow after the restart")
	cancel()
	<-done
	require.NoError(t, postErr)

	mu.Lock()
	want := slices.Clone(phase)
	mu.Unlock()
	last := strconv.FormatInt(slices.Max(want), 10)
	page.waitJS(`document.querySelector('#events-body tr')?.dataset.seq === '`+last+`'`, time.Minute, "the last event shows")
	got := tableSeqs(page)
	require.Empty(t, missing(got, want), "every acknowledged event is in the table; top rows %v", got[:min(20, len(got))])
	// Every seq the server gave out is there, once, in order: the table
	// equals the poster's seqs down to its oldest row.
	all := p.acknowledged()
	oldest := got[len(got)-1]
	var expect []int64
	for _, s := range all {
		if s >= oldest {
			expect = append(expect, s)
		}
	}
	require.Equal(t, join(reversed(expect)), join(got), "no missing, duplicate or reordered seq")
	require.Equal(t, "0", eval[string](page, `document.body.dataset.duplicates`), "the stream sent no frame twice")
	t.Logf("%d events posted across the restart, %d rows", len(want), len(got))
}

// screenshots take the README picture (1280 wide, tall enough for the
// alerts) while events flow, and the first screen at 1280×800 and at a
// phone's width. They are written where KILN_SCREENSHOT says (a .png
// path; the others get -800 and -390 before .png), else into a temp dir.
func screenshots(t *testing.T, page *tab, p *poster) {
	out := os.Getenv("KILN_SCREENSHOT")
	if out == "" {
		out = filepath.Join(t.TempDir(), "dashboard.png")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { // a steady mix, a few batches per second
		types := []string{"page_view", "page_view", "cart.add", "cart.checkout", "user.signup", "payment.failed", "search.query"}
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := p.post(ctx, p.many(4+i%9, types[i%len(types):]...)); err != nil {
				if ctx.Err() != nil {
					err = nil
				}
				done <- err
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(120 * time.Millisecond):
			}
		}
		done <- nil
	}()
	page.waitJS(`Number(document.getElementById('chart').dataset.liveSum) >= 300`, time.Minute, "load flows")
	shot := func(path string, action chromedp.Action[[]byte]) {
		png, err := chromedp.Run(page.ctx, action)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, png, 0o644))
		t.Logf("screenshot %s (%d bytes)", path, len(png))
	}
	page.do(chromedp.EmulateViewport(1280, 800))
	page.waitJS(`document.getElementById('chart').querySelector('canvas').getBoundingClientRect().width >= 400`, time.Minute, "the chart fills its panel")
	require.LessOrEqual(t, eval[int](page, `document.documentElement.scrollWidth`), 1280, "no sideways scrolling at 1280×800")
	shot(strings.TrimSuffix(out, ".png")+"-800.png", chromedp.CaptureScreenshot())
	page.do(chromedp.EmulateViewport(1280, 1160)) // taller, for the alerts below the fold
	page.waitJS(`document.querySelectorAll('#alerts-list li').length > 0`, time.Minute, "alerts to show")
	shot(out, chromedp.CaptureScreenshot())
	page.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	page.waitJS(`document.getElementById('chart').querySelector('canvas').getBoundingClientRect().width <= 390`, time.Minute, "the chart fits a phone")
	require.LessOrEqual(t, eval[int](page, `document.documentElement.scrollWidth`), 390, "no sideways scrolling at phone width")
	shot(strings.TrimSuffix(out, ".png")+"-390.png", chromedp.CaptureScreenshot())
	cancel()
	require.NoError(t, <-done)
}

// missing are the seqs of want that got lacks.
func missing(got, want []int64) []int64 {
	var out []int64
	for _, w := range want {
		if !slices.Contains(got, w) {
			out = append(out, w)
		}
	}
	return out
}

// containsAny reports whether any of want is in got.
func containsAny(got []int64, want []int64) bool {
	for _, w := range want {
		if slices.Contains(got, w) {
			return true
		}
	}
	return false
}

func reversed(s []int64) []int64 {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

func jsArray(seqs []int64) string { return "[" + join(seqs) + "]" }
