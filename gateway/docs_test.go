package gateway_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/gateway"
)

func TestDocsServeLocalAssets(t *testing.T) {
	t.Parallel()
	svc, err := gateway.New(gateway.Config{}, deadDeps(t))
	require.NoError(t, err)
	url := serve(t, svc)

	for _, path := range []string{"/docs", "/docs/", "/docs/index.html"} {
		r := get(t, url+path)
		require.Equal(t, 200, r.status, path)
		require.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"), path)
	}
	page := get(t, url+"/docs")
	html := string(page.body)
	require.Contains(t, html, `id="swagger-ui"`)
	require.NotRegexp(t, `(src|href)="(https?:)?//`, html, "no CDN: every asset is served locally")

	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(html, -1)
	wantTypes := map[string]string{".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
	var kinds []string
	for _, m := range refs {
		r := get(t, url+m[1])
		require.Equal(t, 200, r.status, m[1])
		require.NotEmpty(t, r.body, m[1])
		ext := m[1][strings.LastIndex(m[1], "."):]
		require.Contains(t, r.header.Get("Content-Type"), wantTypes[ext], m[1])
		kinds = append(kinds, ext)

		etag := r.header.Get("ETag")
		require.NotEmpty(t, etag, m[1])
		require.Equal(t, 304, get(t, url+m[1], "If-None-Match", etag).status, m[1])
	}
	require.Subset(t, kinds, []string{".js", ".css"})

	init := get(t, url+"/docs/init.js")
	require.Contains(t, string(init.body), `"/openapi.json"`)
	require.Contains(t, string(init.body), "validatorUrl: null", "no call to the public validator")
	requireProblem(t, get(t, url+"/docs/swagger-initializer.js"), 404)
}

func TestStoresDownAreUnavailable(t *testing.T) {
	t.Parallel()
	svc, err := gateway.New(gateway.Config{}, deadDeps(t))
	require.NoError(t, err)
	url := serve(t, svc)
	for _, path := range []string{"/events", "/events/some-id", "/metrics", "/readyz"} {
		r := get(t, url+path)
		requireProblem(t, r, 503)
		require.Equal(t, "1", r.header.Get("Retry-After"), path)
	}
	require.Equal(t, 200, get(t, url+"/healthz").status)
	require.Equal(t, 200, get(t, url+"/openapi.json").status)
}
