package httpserver

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// corsApp is a public app as the roles build it: a route per family a
// browser calls, and the webhooks admin API as the server-only prefix.
func corsApp(t *testing.T, list string) *fiber.App {
	t.Helper()
	o, err := ParseOrigins(list)
	if err != nil {
		t.Fatal(err)
	}
	app := NewApp(AppConfig{BodyLimit: 1 << 20, Log: slog.New(slog.DiscardHandler), Origins: &o,
		ServerOnly: []string{"/webhook-endpoints", "/webhook-deliveries"}})
	ok := func(c *fiber.Ctx) error {
		c.Set("X-Next-Cursor", "abc")
		return c.SendString("ok")
	}
	for _, p := range []string{"/events", "/metrics", "/stream", "/orders", "/alerts", "/openapi.json", "/docs", "/schemas/page.view", "/webhook-endpoints", "/webhook-endpoints/x1"} {
		app.Get(p, ok)
		app.Post(p, ok)
	}
	return app
}

func corsDo(t *testing.T, app *fiber.App, method, path, origin string, preflight bool) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if preflight {
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,idempotency-key")
	}
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	_ = resp.Body.Close()
	return resp
}

func TestCORSPreflightAndSimpleRequests(t *testing.T) {
	const page = "http://127.0.0.1:5173"
	tests := []struct {
		name, list, path, origin string
		// allowOrigin is the Access-Control-Allow-Origin wanted ("" none).
		allowOrigin string
	}{
		{"any origin, ingest", "*", "/events", page, "*"},
		{"any origin, metrics", "*", "/metrics", page, "*"},
		{"any origin, stream", "*", "/stream", page, "*"},
		{"any origin, orders", "*", "/orders", page, "*"},
		{"any origin, alerts", "*", "/alerts", page, "*"},
		{"any origin, openapi", "*", "/openapi.json", page, "*"},
		{"any origin, docs", "*", "/docs", page, "*"},
		{"any origin, schemas", "*", "/schemas/page.view", page, "*"},
		{"listed origin", "https://app.example.com," + page, "/events", page, page},
		{"unlisted origin", "https://app.example.com", "/events", page, ""},
		{"wildcard subdomain", "https://*.example.com", "/events", "https://shop.example.com", "https://shop.example.com"},
		{"wildcard does not match the apex", "https://*.example.com", "/events", "https://example.com", ""},
		{"admin API not opened by *", "*", "/webhook-endpoints", page, ""},
		{"admin API item not opened by *", "*", "/webhook-endpoints/x1", page, ""},
		{"admin API opened by its listed origin", "*, https://ops.example.com", "/webhook-endpoints", "https://ops.example.com", "https://ops.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := corsApp(t, tt.list)

			pre := corsDo(t, app, http.MethodOptions, tt.path, tt.origin, true)
			if got := pre.Header.Get("Access-Control-Allow-Origin"); got != tt.allowOrigin {
				t.Errorf("preflight Access-Control-Allow-Origin = %q, want %q", got, tt.allowOrigin)
			}
			if tt.allowOrigin != "" {
				if pre.StatusCode != http.StatusNoContent {
					t.Errorf("preflight status = %d, want 204", pre.StatusCode)
				}
				if got := pre.Header.Get("Access-Control-Allow-Headers"); got != "Authorization,X-API-Key,Idempotency-Key,Last-Event-ID,Content-Type" {
					t.Errorf("Access-Control-Allow-Headers = %q", got)
				}
				if pre.Header.Get("Access-Control-Allow-Methods") == "" || pre.Header.Get("Access-Control-Max-Age") == "" {
					t.Errorf("preflight without methods or max age: %v", pre.Header)
				}
			}
			if strings.HasPrefix(tt.path, "/webhook-") && tt.allowOrigin == "" {
				for k := range pre.Header {
					if strings.HasPrefix(k, "Access-Control-") {
						t.Errorf("server-only route answered a preflight with %s", k)
					}
				}
			}
			if pre.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Error("credentials mode is on")
			}

			for _, method := range []string{http.MethodGet, http.MethodPost} {
				resp := corsDo(t, app, method, tt.path, tt.origin, false)
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s status = %d, want 200 (CORS never refuses, the browser does)", method, resp.StatusCode)
				}
				if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.allowOrigin {
					t.Errorf("%s Access-Control-Allow-Origin = %q, want %q", method, got, tt.allowOrigin)
				}
				if tt.allowOrigin != "" && resp.Header.Get("Access-Control-Expose-Headers") != "X-Next-Cursor,Link,X-Kiln-Source,Retry-After" {
					t.Errorf("%s Access-Control-Expose-Headers = %q", method, resp.Header.Get("Access-Control-Expose-Headers"))
				}
			}
		})
	}
}

// TestCORSNoOriginIsNotCORS: a server-to-server call (no Origin) gets no
// CORS headers and is served as before.
func TestCORSNoOriginIsNotCORS(t *testing.T) {
	app := corsApp(t, "*")
	resp := corsDo(t, app, http.MethodPost, "/events", "", false)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("POST /events without Origin = %d %v", resp.StatusCode, resp.Header)
	}
}

// TestAdminAppHasNoCORS: the admin listener (no Origins) answers no
// preflight.
func TestAdminAppHasNoCORS(t *testing.T) {
	app := NewAdminApp(NewRegistry(), nil, slog.New(slog.DiscardHandler))
	resp := corsDo(t, app, http.MethodOptions, "/metrics", "http://127.0.0.1:5173", true)
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.StatusCode == http.StatusNoContent {
		t.Fatalf("admin preflight = %d %v", resp.StatusCode, resp.Header)
	}
}
