package ingest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// benchPageView is shaped like the events kiln-load posts.
func benchPageView(i int) string {
	return fmt.Sprintf(`{"eventType":"page_view","userId":"bench-user-%d","timestamp":%d,"metadata":{"durationMs":%d,"path":"/products/%d","referrer":"https://www.example.com/search?q=kiln"}}`,
		i%16, 1_700_000_000_000+i, 1000+i%16, i%16)
}

// benchServe drives the ingest service's handler (no sockets) with many
// requests in flight, publishing to a real embedded JetStream: the whole
// write path of ingest, without HTTP transport and the load tool.
func benchServe(b *testing.B, body string, events int) {
	benchHandler(b, newHarness(b, nil).app.Handler(), body, events)
}

// benchHandler drives handler as benchServe describes.
func benchHandler(b *testing.B, handler fasthttp.RequestHandler, body string, events int) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		for pb.Next() {
			ctx.Request.Reset()
			ctx.Response.Reset()
			ctx.Request.Header.SetMethod(fasthttp.MethodPost)
			ctx.Request.SetRequestURI("/events")
			ctx.Request.Header.SetContentType("application/json")
			ctx.Request.SetBodyString(body)
			handler(&ctx)
			if ctx.Response.StatusCode() != fasthttp.StatusAccepted {
				b.Errorf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
				return
			}
		}
	})
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkServeBatch100(b *testing.B) {
	events := make([]string, 100)
	for i := range events {
		events[i] = benchPageView(i)
	}
	benchServe(b, "["+strings.Join(events, ",")+"]", len(events))
}

func BenchmarkServeSingle(b *testing.B) { benchServe(b, benchPageView(7), 1) }
