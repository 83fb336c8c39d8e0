package dashboard_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestBrowserSchemasPage: issue 24 item 6 in Chromium. A schema pushed
// over the API shows in the Schemas panel with its version and when an
// event of it was last stored; an event it refuses shows there (refused
// per minute, the failing field with that event as the example) and in
// the rejected events list with its reasons, once the admin key is given
// in the page's form; a quarantined one shows as quarantined.
func TestBrowserSchemasPage(t *testing.T) {
	const admin = "server-admin-0123456789"
	b := startBrowser(t)
	k := startKiln(t, "KILN_ADMIN_KEYS", admin)
	page := b.newTab()
	page.do(chromedp.Navigate(k.base + "/"))
	page.waitJS(`document.body.dataset.schemasState === 'loaded'`, time.Minute, "the schemas panel loads")
	page.waitJS(`document.querySelector('#schemas-body tr[data-type="order.created"]')?.dataset.latest === '1'`, time.Minute,
		"the embedded schemas are listed")
	page.waitJS(`!document.getElementById('admin-auth').hidden`, time.Minute, "the page asks for the admin key the rejections need")

	send(t, http.MethodPost, k.base+"/schemas/signup.completed", admin,
		`{"allOf":[{"$ref":"envelope.json"}],"required":["metadata"],"properties":{"metadata":{"type":"object","required":["plan"],"properties":{"plan":{"type":"string"}}}}}`,
		http.StatusCreated)
	now := time.Now().UnixMilli()
	refusedID := fmt.Sprintf("refused-%d", time.Now().UnixNano())
	// Ingest follows the registry within a second: until then the bad
	// event is accepted (no schema yet), so its id changes each try.
	var stored bool
	require.Eventually(t, func() bool {
		refusedID = fmt.Sprintf("refused-%d", time.Now().UnixNano())
		status := send(t, http.MethodPost, k.base+"/events", "",
			fmt.Sprintf(`{"id":%q,"eventType":"signup.completed","userId":"u1","timestamp":%d,"metadata":{"plan":5}}`, refusedID, now), 0)
		stored = stored || status == http.StatusAccepted
		return status == http.StatusBadRequest
	}, 2*time.Minute, 50*time.Millisecond, "the new schema refuses the event")
	send(t, http.MethodPost, k.base+"/events", "",
		fmt.Sprintf(`{"eventType":"signup.completed","userId":"u1","timestamp":%d,"metadata":{"plan":"pro"}}`, now), http.StatusAccepted)

	page.do(chromedp.SendKeys(chromedp.ID("admin-key"), admin), chromedp.Click(chromedp.CSS(`#admin-auth button`)))
	row := `document.querySelector('#schemas-body tr[data-type="signup.completed"]')`
	page.waitJS(row+`?.dataset.latest === '1' && `+row+`.dataset.refused === '1'`, time.Minute,
		"the pushed type shows with its refused event")
	page.waitJS(`/ago$/.test(`+row+`.querySelector('td.last-seen time')?.textContent || '')`, time.Minute,
		"the stored event is last seen")
	field := row + `.querySelector('td.fields li[data-field="metadata.plan"]')`
	page.waitJS(field+` !== null`, time.Minute, "the failing field is named")
	require.Contains(t, eval[string](page, field+`.textContent`), refusedID, "the newest refused event is the example")
	require.Contains(t, eval[string](page, field+`.textContent`), "×1")

	item := `document.querySelector('#rejections-list li[data-id=` + jsString(refusedID) + `]')`
	page.waitJS(item+` !== null`, time.Minute, "the refused event is in the rejections list")
	require.Contains(t, eval[string](page, item+`.querySelector('.reasons').textContent`), "metadata.plan")
	require.Contains(t, eval[string](page, item+`.querySelector('pre').textContent`), `"plan": 5`, "its body as sent")
	require.True(t, eval[bool](page, `document.getElementById('admin-auth').hidden`), "the key was accepted")
	require.True(t, eval[bool](page, `localStorage.getItem('kiln.adminKey') === null && sessionStorage.getItem('kiln.adminKey') === `+jsString(admin)),
		"the admin key is kept for this tab only")

	// Quarantine: answered 202, listed as quarantined.
	send(t, http.MethodPut, k.base+"/schemas/signup.completed/settings", admin, `{"enforcement":"quarantine"}`, http.StatusOK)
	quarantinedID := ""
	require.Eventually(t, func() bool {
		quarantinedID = fmt.Sprintf("quarantined-%d", time.Now().UnixNano())
		return send(t, http.MethodPost, k.base+"/events", "",
			fmt.Sprintf(`{"id":%q,"eventType":"signup.completed","userId":"u2","timestamp":%d,"metadata":{}}`, quarantinedID, now), 0) == http.StatusAccepted
	}, 2*time.Minute, 200*time.Millisecond, "ingest follows the new enforcement")
	q := `document.querySelector('#rejections-list li[data-id=` + jsString(quarantinedID) + `]')`
	page.waitJS(q+`?.classList.contains('outcome-quarantined')`, time.Minute, "the quarantined event is listed as quarantined")
	page.waitJS(row+`.querySelector('td.enforcement').textContent === 'quarantine'`, time.Minute, "the enforcement shows")
	require.Equal(t, quarantinedID, eval[string](page, `document.querySelector('#rejections-list > li').dataset.id`), "newest first")
	seqs := eval[[]int64](page, `[...document.querySelectorAll('#rejections-list > li')].map((li) => Number(li.dataset.seq))`)
	require.True(t, slices.IsSortedFunc(seqs, func(a, b int64) int { return cmp.Compare(b, a) }), "newest first: %v", seqs)

	// A picture of both panels, beside the dashboard's when KILN_SCREENSHOT
	// names a .png, else in a temp dir.
	out := filepath.Join(t.TempDir(), "dashboard-schemas.png")
	if s := os.Getenv("KILN_SCREENSHOT"); s != "" {
		out = strings.TrimSuffix(s, ".png") + "-schemas.png"
	}
	png, err := chromedp.Run(page.ctx, chromedp.Screenshot(chromedp.CSS(`section.schemas`)))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(out, png, 0o644))
	png, err = chromedp.Run(page.ctx, chromedp.Screenshot(chromedp.CSS(`section.rejections`)))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(strings.TrimSuffix(out, ".png")+"-rejections.png", png, 0o644))
	t.Logf("screenshots %s", out)
}

// send makes one request (key as X-API-Key when set) and returns its
// status; want (when not 0) is the status it must be.
func send(t *testing.T, method, url, key, body string, want int) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if want != 0 {
		require.Equal(t, want, res.StatusCode, "%s %s: %s", method, url, b)
	}
	require.True(t, json.Valid(b) || len(b) == 0, "%s %s answers JSON", method, url)
	return res.StatusCode
}
