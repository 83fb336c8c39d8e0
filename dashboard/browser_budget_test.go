package dashboard_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// budgetBytes is the first-load budget of JS+CSS transferred (gzip).
const budgetBytes = 300 << 10

// netLog records the responses of a tab from the protocol's network
// events. The listener runs on the tab's reader goroutine.
type netLog struct {
	mu   sync.Mutex
	byID map[network.RequestID]*response
}

// response is one request's answer as the browser saw it.
type response struct {
	url, encoding string
	status        int64
	transferred   float64 // bytes on the wire, headers included
	finished      bool
}

func (n *netLog) listen(ev any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byID == nil {
		n.byID = map[network.RequestID]*response{}
	}
	switch ev := ev.(type) {
	case *network.EventResponseReceived:
		r := &response{url: ev.Response.URL, status: ev.Response.Status}
		for k, v := range ev.Response.Headers {
			if strings.EqualFold(k, "Content-Encoding") {
				r.encoding = fmt.Sprint(v)
			}
		}
		n.byID[ev.RequestID] = r
	case *network.EventLoadingFinished:
		if r := n.byID[ev.RequestID]; r != nil {
			r.transferred, r.finished = ev.EncodedDataLength, true
		}
	}
}

// assets are the finished responses for the dashboard's JS and CSS files.
func (n *netLog) assets() (done []response, pending int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range n.byID {
		if !strings.Contains(r.url, "/dashboard/") || !(strings.HasSuffix(r.url, ".js") || strings.HasSuffix(r.url, ".css")) {
			continue
		}
		if !r.finished {
			pending++
			continue
		}
		done = append(done, *r)
	}
	slices.SortFunc(done, func(a, b response) int { return strings.Compare(a.url, b.url) })
	return done, pending
}

// firstLoadBudget checks what the page's first load (cache disabled)
// transferred for its scripts and styles, and prints it.
func firstLoadBudget(t *testing.T, page *tab, n *netLog) {
	// Every module the page imports, from the page itself.
	want := eval[int](page, `performance.getEntriesByType('resource').filter((e) => /\/dashboard\/[^/]+\.(js|css)$/.test(e.name)).length`)
	require.GreaterOrEqual(t, want, 8, "the page loads its modules, styles and uPlot")
	var files []response
	require.Eventually(t, func() bool {
		var pending int
		files, pending = n.assets()
		return pending == 0 && len(files) >= want
	}, 3*time.Minute, 20*time.Millisecond, "the network log has every JS and CSS file")
	var transferred float64
	for _, f := range files {
		require.EqualValues(t, 200, f.status, f.url)
		require.Equal(t, "gzip", f.encoding, "%s is sent gzipped", f.url)
		transferred += f.transferred
		t.Logf("%6.0f B  %s", f.transferred, f.url[strings.Index(f.url, "/dashboard/"):])
	}
	t.Logf("first load: %d JS+CSS files, %.1f KiB transferred (gzip, headers included), budget %d KiB",
		len(files), transferred/1024, budgetBytes>>10)
	jsonLine(t, map[string]any{
		"scenario": "dashboard_first_load", "encoding": "gzip", "files": len(files),
		"js_css_transferred_bytes": int(transferred), "budget_bytes": budgetBytes,
	})
	require.LessOrEqual(t, transferred, float64(budgetBytes), "JS+CSS first load over budget")
}

// plainEventSource opens a page-less EventSource on /stream in its own tab
// (no dashboard code) and checks it gets the compat connected frame and
// then the posted events with their seq as lastEventId.
func plainEventSource(t *testing.T, b *browser, k *kiln, p *poster) {
	es := b.newTab().with(t)
	es.do(chromedp.Navigate(k.base + "/healthz"))
	eval[bool](es, `window.got = []; window.es = new EventSource('/stream?type=es.*');
		es.onmessage = (e) => got.push({data: JSON.parse(e.data), id: e.lastEventId}); true`)
	es.waitJS(`got.length > 0 && got[0].data.connected === true`, time.Minute, "the connected frame")
	seqs := p.mustPost(t, p.many(10, "es.ping", "es.pong")...)
	es.waitJS(`got.length === 11`, seenWithin, "ten events reach the EventSource")
	type msg struct {
		Data struct {
			Seq       int64  `json:"seq"`
			EventType string `json:"eventType"`
		} `json:"data"`
		ID string `json:"id"`
	}
	got := eval[[]msg](es, `got.slice(1)`)
	for i, m := range got {
		require.Equal(t, seqs[i], m.Data.Seq)
		require.Equal(t, fmt.Sprint(seqs[i]), m.ID, "lastEventId is the seq")
		require.True(t, strings.HasPrefix(m.Data.EventType, "es."))
	}
	eval[bool](es, `es.close(); true`)
}
