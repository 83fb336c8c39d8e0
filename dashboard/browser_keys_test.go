package dashboard_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/httpserver/tokens"
)

// TestBrowserKeysOnAnotherOrigin: the credentials a page may hold, used
// from a page on another origin in Chromium. A publishable key writes its
// types with navigator.sendBeacon (the key in the URL) and is refused, 403
// naming eventType, for another type; a subscriber token in EventSource's
// URL streams only its user's events of its types while others are
// written.
func TestBrowserKeysOnAnotherOrigin(t *testing.T) {
	const (
		pk     = "pk_browser_0123456789abcdef"
		secret = "browser-test-secret-0123456789abcdef"
	)
	b := startBrowser(t)
	site := servePage(t)
	k := startKiln(t, "KILN_INGEST_KEYS", "server-ingest", "KILN_READ_KEYS", "server-read", "KILN_ADMIN_KEYS", "server-admin",
		"KILN_PUBLISHABLE_KEYS", pk+" types=page.* origins="+site.URL, "KILN_TOKEN_SECRETS", secret)
	keyring, err := tokens.NewKeyring(tokens.Config{Secrets: []string{secret}})
	require.NoError(t, err)
	token, err := keyring.Sign(tokens.Mint{Types: []string{"page.*"}, UserID: "u1", TTL: 10 * time.Minute}, time.Now())
	require.NoError(t, err)
	page := openPage(t, b, site.URL, k.base)
	marker := fmt.Sprintf("keys-%d", time.Now().UnixNano())

	page.do(chromedp.Evaluate[chromedp.Void](`
window.k = {frames: []};
const es = new EventSource(KILN + '/stream?access_token=' + ` + jsString(token) + `);
es.onopen = () => { k.open = true; };
es.onmessage = (m) => { const d = JSON.parse(m.data); if (d.id) k.frames.push(d.eventType + ':' + d.userId); };`))
	page.waitJS(`k.open === true`, time.Minute, "the token's stream opens")

	page.do(chromedp.Evaluate[chromedp.Void](`
k.beacon = navigator.sendBeacon(KILN + '/events?key=' + ` + jsString(pk) + `,
  JSON.stringify({id: ` + jsString(marker) + `, eventType: 'page.leave', userId: 'u1', timestamp: Date.now()}));
fetch(KILN + '/events', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-API-Key': ` + jsString(pk) + `},
  body: JSON.stringify({eventType: 'order.shipped', userId: 'u1', timestamp: Date.now()})})
  .then((r) => r.json().then((b) => { k.other = r.status + ' ' + (b.errors && b.errors[0].field); }), (e) => { k.other = String(e); });`))
	page.waitJS(`k.other !== undefined`, time.Minute, "the POST of another type is answered")
	require.Equal(t, "403 eventType", eval[string](page, `k.other`))
	require.True(t, eval[bool](page, `k.beacon`), "sendBeacon queued the event")

	for _, ev := range []string{`{"eventType":"order.shipped","userId":"u1"`, `{"eventType":"page.view","userId":"u2"`, `{"eventType":"page.view","userId":"u1"`} {
		req, err := http.NewRequest("POST", k.base+"/events", strings.NewReader(ev+`,"timestamp":`+fmt.Sprint(time.Now().UnixMilli())+`}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer server-ingest")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
	}
	page.waitJS(`k.frames.includes('page.view:u1') && k.frames.includes('page.leave:u1')`, time.Minute,
		"the beacon's event and the token's other event arrive")
	require.ElementsMatch(t, []string{"page.leave:u1", "page.view:u1"}, eval[[]string](page, `k.frames`),
		"the stream carries only the token's user and types")
}
