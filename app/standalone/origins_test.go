package standalone_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
)

// corsAnswer is what one request with an Origin got.
type corsAnswer struct {
	status      int
	allowOrigin string
	corsHeaders []string
}

func corsRequest(t *testing.T, method, url, origin string, preflight bool) corsAnswer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	req.Header.Set("Origin", origin)
	if preflight {
		req.Header.Set("Access-Control-Request-Method", http.MethodGet)
		req.Header.Set("Access-Control-Request-Headers", "authorization, last-event-id")
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	a := corsAnswer{status: res.StatusCode, allowOrigin: res.Header.Get("Access-Control-Allow-Origin")}
	for k := range res.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			a.corsHeaders = append(a.corsHeaders, k)
		}
	}
	return a
}

// TestOriginPolicyOnEveryRouteFamily: the standalone's one port answers
// CORS on every route family a browser calls, per KILN_ALLOWED_ORIGINS;
// the webhooks admin API only for an origin listed explicitly; Socket.IO
// refuses a page from an unlisted origin with 403.
func TestOriginPolicyOnEveryRouteFamily(t *testing.T) {
	const (
		page    = "http://127.0.0.1:5173"
		ops     = "https://ops.example.com"
		shop    = "https://eu.shop.example.com"
		unknown = "https://evil.example.org"
	)
	browserRoutes := []string{"/events", "/events/some-id", "/metrics", "/stream", "/orders", "/alerts", "/docs", "/openapi.json"}
	adminRoutes := []string{"/webhook-endpoints", "/webhook-endpoints/x1/deliveries", "/webhook-deliveries/x1"}
	tests := []struct {
		name     string
		origins  string // KILN_ALLOWED_ORIGINS; "" leaves the default
		allowed  map[string]string
		admin    map[string]string
		socketIO map[string]int
	}{{
		name:     "default: any origin",
		allowed:  map[string]string{page: "*", unknown: "*"},
		admin:    map[string]string{page: "", unknown: ""},
		socketIO: map[string]int{page: http.StatusOK, unknown: http.StatusOK},
	}, {
		name:     "a list",
		origins:  page + ", https://*.shop.example.com, " + ops,
		allowed:  map[string]string{page: page, shop: shop, ops: ops, unknown: ""},
		admin:    map[string]string{ops: ops, page: page, unknown: ""},
		socketIO: map[string]int{page: http.StatusOK, shop: http.StatusOK, unknown: http.StatusForbidden},
	}, {
		name:     "* and the admin API's origin",
		origins:  "*, " + ops,
		allowed:  map[string]string{page: "*", ops: "*"},
		admin:    map[string]string{ops: ops, page: ""},
		socketIO: map[string]int{unknown: http.StatusOK},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var env []string
			if tt.origins != "" {
				env = append(env, "KILN_ALLOWED_ORIGINS", tt.origins)
			}
			in := standalonetest.Start(t, t.TempDir(), env...)
			for origin, want := range tt.allowed {
				for _, path := range browserRoutes {
					pre := corsRequest(t, http.MethodOptions, in.Base+path, origin, true)
					require.Equal(t, want, pre.allowOrigin, "preflight %s from %s", path, origin)
					if want != "" {
						require.Equal(t, http.StatusNoContent, pre.status, "preflight %s from %s", path, origin)
					}
					get := corsRequest(t, http.MethodGet, in.Base+path, origin, false)
					require.Equal(t, want, get.allowOrigin, "GET %s from %s (%d)", path, origin, get.status)
				}
				pre := corsRequest(t, http.MethodOptions, in.Base+"/events", origin, true)
				if want != "" {
					require.Contains(t, pre.corsHeaders, "Access-Control-Allow-Headers")
				}
			}
			for origin, want := range tt.admin {
				for _, path := range adminRoutes {
					pre := corsRequest(t, http.MethodOptions, in.Base+path, origin, true)
					get := corsRequest(t, http.MethodGet, in.Base+path, origin, false)
					require.Equal(t, want, pre.allowOrigin, "preflight %s from %s", path, origin)
					require.Equal(t, want, get.allowOrigin, "GET %s from %s", path, origin)
					if want == "" {
						require.Empty(t, pre.corsHeaders, "preflight %s from %s", path, origin)
						require.Empty(t, get.corsHeaders, "GET %s from %s", path, origin)
					}
				}
			}
			for origin, want := range tt.socketIO {
				res := corsRequest(t, http.MethodGet, in.Base+"/socket.io/?EIO=4&transport=polling", origin, false)
				require.Equal(t, want, res.status, "Socket.IO polling handshake from %s", origin)
				if want == http.StatusOK && tt.allowed[origin] != "" {
					require.Equal(t, tt.allowed[origin], res.allowOrigin, "Socket.IO polling from %s", origin)
				}
			}
		})
	}
}
