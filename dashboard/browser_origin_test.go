package dashboard_test

// Pages on another origin, as both old front ends ran (the events dashboard
// as a static site calling the API's host, the order system's client on
// Vite's port): a page served by a second HTTP server on another port of
// 127.0.0.1 calls Kiln with fetch, EventSource and socket.io-client in a
// real Chromium. The policy is KILN_ALLOWED_ORIGINS: "*" by default, as the
// old servers; with a list, an unlisted page gets no CORS headers and its
// WebSocket upgrade 403.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// originWSToken is the old server's shared Socket.IO token (WS_TOKEN).
const originWSToken = "old-ws-token"

// originPage is the page of another origin: helpers that record each
// call's outcome in window.r, for the test to poll.
const originPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>another origin</title>
<script>
const q = new URLSearchParams(location.search);
window.KILN = q.get('kiln');
window.TOKEN = q.get('token');
</script>
<script src="/socket.io.min.js"></script>
<script>
window.r = {stream: [], frames: 0, updates: [], chat: []};
function record(name, p) {
  p.then((v) => { r[name] = v; }, (e) => { r[name] = {error: String(e)}; });
}
async function call(method, path, body) {
  const init = {method, headers: {}};
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.headers['Idempotency-Key'] = body.id;
    init.body = JSON.stringify(body);
  }
  const res = await fetch(KILN + path, init);
  return {status: res.status, body: await res.json()};
}
function listen(type) {
  const es = new EventSource(KILN + '/stream');
  window.es = es;
  es.onopen = () => { r.streamOpen = true; };
  es.onerror = () => { r.streamError = es.readyState; };
  // Events come as unnamed (message) frames with their type in the data.
  es.onmessage = (m) => {
    r.frames++;
    const d = JSON.parse(m.data);
    if (d.eventType === type) r.stream.push(d);
  };
}
function sockets() {
  const opts = {auth: {token: TOKEN}, transports: ['websocket'], reconnection: false};
  const notes = io(KILN + '/notifications', opts);
  notes.on('connect', () => { r.notesConnected = true; });
  notes.on('connect_error', (e) => { r.notesError = String(e && e.message); });
  notes.on('order:update', (m) => { r.updates.push(m); });
  const chat = io(KILN + '/chat', opts);
  chat.on('connect', () => { r.chatConnected = true; });
  chat.on('connect_error', (e) => { r.chatError = String(e && e.message); });
  chat.on('message', (m) => { r.chat.push(m); });
}
</script></head><body>another origin</body></html>`

// servePage serves originPage and socket.io-client's browser bundle from
// another port of 127.0.0.1: another origin than Kiln's. The page is
// told Kiln's base URL and the token in its query (openPage).
func servePage(t *testing.T) *httptest.Server {
	t.Helper()
	bundle, err := filepath.Abs("../testsupport/node/node_modules/socket.io-client/dist/socket.io.min.js")
	require.NoError(t, err)
	_, err = os.Stat(bundle)
	require.NoError(t, err, "run scripts/install-test-deps (npm ci in testsupport/node)")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, originPage)
	})
	mux.HandleFunc("GET /socket.io.min.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, bundle)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// openPage opens the page of site calling kiln in a new tab and waits
// for its script.
func openPage(t *testing.T, b *browser, site, kiln string) *tab {
	t.Helper()
	page := b.newTab().with(t)
	page.do(chromedp.Navigate(site + "/?" + url.Values{"kiln": {kiln}, "token": {originWSToken}}.Encode()))
	page.waitJS(`typeof io === 'function' && typeof window.r === 'object'`, time.Minute, "the page and socket.io-client load")
	return page
}

// upgradeStatus sends a Socket.IO WebSocket upgrade to kiln the way a
// browser does, with origin as its Origin ("" for none, as Node clients),
// and returns the answer's status.
func upgradeStatus(t *testing.T, kiln, origin string) int {
	t.Helper()
	u, err := url.Parse(kiln)
	require.NoError(t, err)
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	req := "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: " + u.Host + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	if origin != "" {
		req += "Origin: " + origin + "\r\n"
	}
	_, err = conn.Write([]byte(req + "\r\n"))
	require.NoError(t, err)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	_ = res.Body.Close()
	return res.StatusCode
}

// TestBrowserPageOnAnotherOrigin: with the default policy a page on another
// origin posts and reads events and metrics, follows /stream and connects
// socket.io-client over WebSocket to /notifications and /chat, receiving
// their broadcasts.
func TestBrowserPageOnAnotherOrigin(t *testing.T) {
	b := startBrowser(t)
	k := startKiln(t, "WS_TOKEN", originWSToken)
	site := servePage(t)
	require.NotEqual(t, k.base, site.URL)
	p := newPoster(k.base)

	require.Equal(t, http.StatusSwitchingProtocols, upgradeStatus(t, k.base, site.URL), "WebSocket upgrade from the page's origin")
	require.Equal(t, http.StatusSwitchingProtocols, upgradeStatus(t, k.base, ""), "WebSocket upgrade without Origin (Node)")

	page := openPage(t, b, site.URL, k.base)
	marker := fmt.Sprintf("origin-%d", time.Now().UnixNano())

	t.Run("fetch POST /events", func(t *testing.T) {
		page := page.with(t)
		page.do(chromedp.Evaluate[chromedp.Void](`record('post', call('POST', '/events', {id: ` + jsString(marker) +
			`, eventType: 'boot.check', userId: 'page', timestamp: Date.now(), metadata: {marker: ` + jsString(marker) + `}}))`))
		page.waitJS(`r.post !== undefined`, time.Minute, "POST /events answers")
		require.Equal(t, `{"accepted":true,"status":202}`,
			eval[string](page, `JSON.stringify({accepted: r.post.body && r.post.body.accepted, status: r.post.status, error: r.post.error})`))
	})

	t.Run("fetch GET /events and /metrics", func(t *testing.T) {
		page := page.with(t)
		page.waitJS(`(() => { if (r.listPending) return false; if (r.list && !r.list.error && r.list.body.some((e) => e.id === `+jsString(marker)+`)) return true;
			r.list = undefined; r.listPending = true; call('GET', '/events?limit=100').then((v) => { r.list = v; }, (e) => { r.list = {error: String(e)}; }).finally(() => { r.listPending = false; });
			return false; })()`, 2*time.Minute, "GET /events shows the posted event")
		page.do(chromedp.Evaluate[chromedp.Void](`record('metrics', call('GET', '/metrics'))`))
		page.waitJS(`r.metrics !== undefined`, time.Minute, "GET /metrics answers")
		require.Equal(t, "200 object", eval[string](page, `r.metrics.status + ' ' + typeof r.metrics.body`), eval[string](page, `JSON.stringify(r.metrics)`))
	})

	t.Run("EventSource /stream gets per-event frames", func(t *testing.T) {
		page := page.with(t)
		page.do(chromedp.Evaluate[chromedp.Void](`listen('origin.stream')`))
		page.waitJS(`r.streamOpen === true && r.frames > 0`, time.Minute, "the stream opens and sends its first frame")
		ev := p.make("origin.stream", "page")
		ev.Metadata = map[string]any{"marker": marker}
		seq := p.mustPost(t, ev)[0]
		page.waitJS(`r.stream.some((e) => e.id === `+jsString(ev.ID)+`)`, time.Minute, "the posted event's frame arrives")
		require.EqualValues(t, seq, eval[int64](page, `r.stream.find((e) => e.id === `+jsString(ev.ID)+`).seq`))
	})

	t.Run("socket.io-client over WebSocket gets broadcasts", func(t *testing.T) {
		page := page.with(t)
		page.do(chromedp.Evaluate[chromedp.Void](`sockets()`))
		page.waitJS(`r.notesConnected === true && r.chatConnected === true`, time.Minute, "both namespaces connect")
		id := "ord-" + marker
		order := p.make("order.created", "ann@example.com")
		order.Metadata = map[string]any{"id": id, "status": "created", "amount": 12.5, "currency": "EUR",
			"customerEmail": "ann@example.com", "createdAt": time.Now().UTC().Format(time.RFC3339)}
		p.mustPost(t, order)
		page.waitJS(`r.updates.some((u) => u.orderId === `+jsString(id)+` && u.status === 'created')`, time.Minute, "order:update arrives on /notifications")
		msg := p.make("chat.message", "bob")
		msg.Metadata = map[string]any{"author": "bob", "text": marker, "createdAt": time.Now().UTC().Format(time.RFC3339)}
		p.mustPost(t, msg)
		page.waitJS(`r.chat.some((m) => m.text === `+jsString(marker)+` && m.author === 'bob')`, time.Minute, "message arrives on /chat")
		require.Equal(t, "", eval[string](page, `(r.notesError || '') + (r.chatError || '')`))
	})
}

// TestBrowserPageOnAnUnlistedOrigin: with KILN_ALLOWED_ORIGINS listing one
// page's origin, that page works and a page on another origin gets no
// CORS headers (its fetches fail) and a 403 on its WebSocket upgrade.
func TestBrowserPageOnAnUnlistedOrigin(t *testing.T) {
	b := startBrowser(t)
	good, bad := servePage(t).URL, servePage(t).URL
	k := startKiln(t, "WS_TOKEN", originWSToken, "KILN_ALLOWED_ORIGINS", "https://*.example.com, "+good)

	require.Equal(t, http.StatusForbidden, upgradeStatus(t, k.base, bad), "WebSocket upgrade from an unlisted origin")
	require.Equal(t, http.StatusForbidden, upgradeStatus(t, k.base, "https://example.com"), "the wildcard does not match its apex")
	require.Equal(t, http.StatusSwitchingProtocols, upgradeStatus(t, k.base, good), "WebSocket upgrade from the listed origin")
	require.Equal(t, http.StatusSwitchingProtocols, upgradeStatus(t, k.base, "https://shop.example.com"), "WebSocket upgrade from a listed subdomain")
	require.Equal(t, http.StatusSwitchingProtocols, upgradeStatus(t, k.base, ""), "WebSocket upgrade without Origin (Node)")
	require.Equal(t, http.StatusSwitchingProtocols, upgradeStatus(t, k.base, k.base), "WebSocket upgrade from Kiln's own pages")

	for _, tc := range []struct {
		name, site string
		works      bool
	}{{"listed origin", good, true}, {"unlisted origin", bad, false}} {
		t.Run(tc.name, func(t *testing.T) {
			page := openPage(t, b, tc.site, k.base)
			page.do(chromedp.Evaluate[chromedp.Void](`record('post', call('POST', '/events', {id: 'unlisted-' + Date.now(),
				eventType: 'boot.check', userId: 'page', timestamp: Date.now()})); record('metrics', call('GET', '/metrics')); sockets()`))
			page.waitJS(`r.post !== undefined && r.metrics !== undefined`, time.Minute, "the fetches settle")
			if tc.works {
				require.Equal(t, "202 200", eval[string](page, `r.post.status + ' ' + r.metrics.status`))
				page.waitJS(`r.notesConnected === true && r.chatConnected === true`, time.Minute, "both namespaces connect")
				return
			}
			got := eval[string](page, `(r.post.error || 'answered ' + r.post.status) + ' | ' + (r.metrics.error || 'answered ' + r.metrics.status)`)
			require.Equal(t, "TypeError: Failed to fetch | TypeError: Failed to fetch", got, "CORS refuses the page's fetches")
			page.waitJS(`r.notesError !== undefined && r.chatError !== undefined`, time.Minute, "socket.io-client fails to connect")
			require.Equal(t, "websocket error", eval[string](page, `r.notesError`))
			require.NotEqual(t, true, eval[any](page, `r.notesConnected || r.chatConnected || false`))
		})
	}
}
