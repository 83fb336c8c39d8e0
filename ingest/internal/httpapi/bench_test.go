package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest/internal/eventbody"
	"github.com/kilnhq/kiln/ingest/internal/httpapi"
	"github.com/kilnhq/kiln/ingest/internal/metrics"
	"github.com/kilnhq/kiln/ingest/internal/publish"
	"github.com/kilnhq/kiln/schemas"
)

// fakePublisher acknowledges every event at once with the next sequence.
type fakePublisher struct{ seq atomic.Uint64 }

func (p *fakePublisher) Publish(_ context.Context, events []publish.Event) []publish.Result {
	out := make([]publish.Result, len(events))
	for i := range out {
		out[i].Seq = p.seq.Add(1)
	}
	return out
}

func newApp(tb testing.TB) *fiber.App {
	tb.Helper()
	reg, err := schemas.NewRegistry()
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &httpapi.Handler{
		Normalizer: &eventbody.Normalizer{Registry: reg, Now: time.Now},
		Publisher:  &fakePublisher{},
		Metrics:    metrics.NewIngest(prometheus.NewRegistry()),
		MaxBatch:   1000,
		RetryAfter: 2,
		Log:        log,
	}
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: 1 << 20, Log: log})
	app.Post("/events", h.PostEvents)
	return app
}

// pageView is shaped like the events kiln-load posts.
func pageView(i int) string {
	return fmt.Sprintf(`{"eventType":"page_view","userId":"bench-user-%d","timestamp":%d,"metadata":{"durationMs":%d,"path":"/products/%d","referrer":"https://www.example.com/search?q=kiln"}}`,
		i%16, 1_700_000_000_000+i, 1000+i%16, i%16)
}

// benchPost drives the Fiber handler directly (no sockets): routing, the
// handler, and encoding the answer, with a publisher that acks at once.
func benchPost(b *testing.B, body string, events int) {
	app := newApp(b)
	handler := app.Handler()
	var ctx fasthttp.RequestCtx
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod(fasthttp.MethodPost)
		ctx.Request.SetRequestURI("/events")
		ctx.Request.Header.SetContentType("application/json")
		ctx.Request.SetBodyString(body)
		handler(&ctx)
		if ctx.Response.StatusCode() != fiber.StatusAccepted {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkPostBatch100(b *testing.B) {
	events := make([]string, 100)
	for i := range events {
		events[i] = pageView(i)
	}
	benchPost(b, "["+strings.Join(events, ",")+"]", len(events))
}

func BenchmarkPostSingle(b *testing.B) { benchPost(b, pageView(7), 1) }
