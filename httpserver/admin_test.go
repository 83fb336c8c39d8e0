package httpserver

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func adminStatus(t *testing.T, opts []AdminOption, path string) (int, string) {
	t.Helper()
	ready := func(context.Context) error { return nil }
	app := NewAdminApp(NewRegistry(), ready, slog.New(slog.DiscardHandler), opts...)
	resp, err := app.Test(httptest.NewRequest(http.MethodGet, path, nil), -1)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestAdminPprofOffByDefault: the profiles are served only with
// WithPprof(true) (ADMIN_PPROF=true); the rest of the admin app is the same.
func TestAdminPprofOffByDefault(t *testing.T) {
	for _, opts := range [][]AdminOption{nil, {WithPprof(false)}} {
		if code, _ := adminStatus(t, opts, "/debug/pprof/"); code != http.StatusNotFound {
			t.Fatalf("pprof off: GET /debug/pprof/ = %d, want 404", code)
		}
		if code, _ := adminStatus(t, opts, "/healthz"); code != http.StatusOK {
			t.Fatalf("pprof off: GET /healthz = %d, want 200", code)
		}
	}
	on := []AdminOption{WithPprof(true)}
	code, body := adminStatus(t, on, "/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof on: GET /debug/pprof/ = %d %q, want 200 with the profile index", code, body)
	}
	if code, body := adminStatus(t, on, "/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("pprof on: GET /debug/pprof/goroutine = %d %q", code, body)
	}
	if code, _ := adminStatus(t, on, "/metrics"); code != http.StatusOK {
		t.Fatalf("pprof on: GET /metrics = %d, want 200", code)
	}
}
