package dashboard_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/dashboard"
)

type answer struct {
	status int
	header map[string]string
	body   []byte
}

func get(t *testing.T, app *fiber.App, path string, header ...string) answer {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := app.Test(req, -1)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	h := map[string]string{}
	for k := range res.Header {
		h[k] = res.Header.Get(k)
	}
	return answer{status: res.StatusCode, header: h, body: body}
}

func newApp(t *testing.T) *fiber.App {
	t.Helper()
	a, err := dashboard.New()
	require.NoError(t, err)
	app := fiber.New()
	a.Register(app)
	return app
}

// TestServesPageAndAssets checks the page references only files the
// package serves (no CDN), with the right types, compression and ETags.
func TestServesPageAndAssets(t *testing.T) {
	t.Parallel()
	app := newApp(t)

	page := get(t, app, "/")
	require.Equal(t, 200, page.status)
	require.Equal(t, "text/html; charset=utf-8", page.header["Content-Type"])
	require.Contains(t, page.header["Content-Security-Policy"], "script-src 'self'")
	html := string(page.body)
	require.NotRegexp(t, `(src|href)="(https?:)?//`, html, "no CDN: every asset is served locally")

	refs := regexp.MustCompile(`(?:src|href)="(dashboard/[^"]+)"`).FindAllStringSubmatch(html, -1)
	require.GreaterOrEqual(t, len(refs), 3, "the page loads its script and styles")
	for _, m := range refs {
		plain := get(t, app, "/"+m[1])
		require.Equal(t, 200, plain.status, m[1])
		require.Empty(t, plain.header["Content-Encoding"], m[1])
		require.Regexp(t, `^text/(javascript|css)`, plain.header["Content-Type"], m[1])
		require.Equal(t, "no-cache", plain.header["Cache-Control"], m[1])
		require.Equal(t, "nosniff", plain.header["X-Content-Type-Options"], m[1])
		etag := plain.header["Etag"]
		require.NotEmpty(t, etag, m[1])
		require.Equal(t, 304, get(t, app, "/"+m[1], "If-None-Match", etag).status, m[1])

		gz := get(t, app, "/"+m[1], "Accept-Encoding", "gzip, deflate")
		require.Equal(t, "gzip", gz.header["Content-Encoding"], m[1])
		require.Contains(t, gz.header["Vary"], "Accept-Encoding", m[1])
		zr, err := gzip.NewReader(bytes.NewReader(gz.body))
		require.NoError(t, err)
		unzipped, err := io.ReadAll(zr)
		require.NoError(t, err)
		require.Equal(t, plain.body, unzipped, m[1])
		require.Less(t, len(gz.body), len(plain.body), m[1])

		br := get(t, app, "/"+m[1], "Accept-Encoding", "gzip, br")
		require.Equal(t, "br", br.header["Content-Encoding"], m[1])
		unbr, err := io.ReadAll(brotli.NewReader(bytes.NewReader(br.body)))
		require.NoError(t, err)
		require.Equal(t, plain.body, unbr, m[1])

		require.Empty(t, get(t, app, "/"+m[1], "Accept-Encoding", "gzip;q=0").header["Content-Encoding"], m[1])
	}
}

// TestModulesResolve checks every relative import of every module names a
// file the package serves: a typo would only show in a browser otherwise.
func TestModulesResolve(t *testing.T) {
	t.Parallel()
	app := newApp(t)
	page := string(get(t, app, "/").body)
	entry := regexp.MustCompile(`<script type="module" src="dashboard/([^"]+)"`).FindStringSubmatch(page)
	require.NotNil(t, entry)
	importRe := regexp.MustCompile(`(?m)^\s*import\s+(?:[^'"]*?\s+from\s+)?['"]\./([^'"]+)['"]`)
	seen := map[string]bool{}
	queue := []string{entry[1]}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		a := get(t, app, "/dashboard/"+name)
		require.Equal(t, 200, a.status, "imported module %s", name)
		for _, m := range importRe.FindAllStringSubmatch(string(a.body), -1) {
			queue = append(queue, m[1])
		}
	}
	require.True(t, seen["uPlot.esm.js"], "the chart library is imported: %v", seen)
	require.GreaterOrEqual(t, len(seen), 6, "%v", seen)
}

func TestUnknownFileIs404(t *testing.T) {
	t.Parallel()
	app := newApp(t)
	for _, p := range []string{"/dashboard/nope.js", "/dashboard/index.html", "/dashboard/..%2Fdashboard.go"} {
		require.Equal(t, 404, get(t, app, p).status, p)
	}
	require.True(t, strings.HasPrefix(get(t, app, "/dashboard/uPlot.LICENSE").header["Content-Type"], "text/plain"))
}
