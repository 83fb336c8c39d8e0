package ingest_test

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fasthttp"

	"github.com/kilnhq/kiln/schemas"
)

// singleClients is how many requests are in flight, as kiln-load's
// ingest_single runs them (-clients 64).
const singleClients = 64

// BenchmarkSingleVsPublish compares, in one run, single-event POST /events
// over real HTTP connections (64 at once) with what the NATS server does
// without ingest in front: synchronous JetStream publishes of a stored
// envelope from 64 goroutines over one connection. Run it with -count so
// the two interleave on a noisy machine:
//
//	go test -run '^$' -bench SingleVsPublish -count 6 ./ingest/
func BenchmarkSingleVsPublish(b *testing.B) {
	h := newHarness(b, nil)
	body := []byte(benchPageView(7))
	b.Run("http", func(b *testing.B) {
		hc := &fasthttp.HostClient{Addr: h.url[len("http://"):], MaxConns: singleClients,
			ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
		uri := h.url + "/events"
		runClients(b, func() error {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(uri)
			req.Header.SetMethod(fasthttp.MethodPost)
			req.Header.SetContentType("application/json")
			req.SetBodyRaw(body)
			if err := hc.Do(req, resp); err != nil {
				return err
			}
			if resp.StatusCode() != fasthttp.StatusAccepted {
				b.Errorf("status %d: %s", resp.StatusCode(), resp.Body())
			}
			return nil
		})
	})
	b.Run("publish", func(b *testing.B) {
		nc := h.nats.Connect(b)
		js, err := jetstream.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		var seq atomic.Uint64
		data := []byte(`{"id":"01JBENCH0000000000000000000","eventType":"page_view","userId":"bench-user-7","timestamp":1700000000007,"receivedAt":1700000000007,"metadata":{"durationMs":1007,"path":"/products/7","referrer":"https://www.example.com/search?q=kiln"}}`)
		runClients(b, func() error {
			m := &nats.Msg{Subject: schemas.Subject("bench_baseline"), Data: data, Header: nats.Header{
				schemas.HeaderMsgID:  {"b-" + strconv.FormatUint(seq.Add(1), 36)},
				schemas.HeaderUserID: {"bench-user-7"},
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := js.PublishMsg(ctx, m, jetstream.WithExpectStream(schemas.StreamName))
			return err
		})
	})
}

// runClients runs op b.N times from singleClients goroutines and reports
// events/s and the CPU time of the whole process (client, ingest and NATS
// server alike) per operation, which a loaded machine disturbs less than
// the rate.
func runClients(b *testing.B, op func() error) {
	b.ReportAllocs()
	b.SetParallelism(max(1, singleClients/runtime.GOMAXPROCS(0)))
	before := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((cpuTime(b)-before).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
