package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
)

// TestStreamLoad measures the live stream for the sse_fanout benchmark and
// prints one JSON line per result. It runs only when asked, without -race
// for realistic numbers:
//
//	KILN_SSE_LOAD=1 go test -run TestStreamLoad -count=1 -v ./gateway/
func TestStreamLoad(t *testing.T) {
	if os.Getenv("KILN_SSE_LOAD") == "" {
		t.Skip("set KILN_SSE_LOAD=1 to measure the live stream")
	}
	t.Run("idle clients", func(t *testing.T) { measureIdleClients(t, 2000) })
	t.Run("fan-out latency", func(t *testing.T) { measureFanOut(t, 10, 2000, 10*time.Second) })
}

// measureIdleClients opens n raw connections that request /stream and
// read only the connected frame, then reports the process's memory growth
// per client, less half the cost of a bare TCP connection pair (the
// client's end lives in this process too).
func measureIdleClients(t *testing.T, n int) {
	g := newLiveGateway(t, liveOptions{})
	host := strings.TrimPrefix(g.url, "http://")
	before, goroutines := memInUse(), runtime.NumGoroutine()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", host)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		_, err = fmt.Fprintf(c, "GET /stream HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		require.NoError(t, err)
		readUntil(t, c, []byte(`{"connected":true}`))
		conns[i] = c
	}
	perClient := float64(memInUse()-before) / float64(n)
	perGoroutines := float64(runtime.NumGoroutine()-goroutines) / float64(n)
	pair := tcpPairCost(t, n)
	report(t, map[string]any{"bench": "sse_idle_client_bytes", "value": int(perClient - pair/2), "unit": "bytes",
		"clients": n, "process_delta_per_client": int(perClient), "tcp_pair_per_client": int(pair),
		"goroutines_per_client": perGoroutines})
}

// tcpPairCost is the memory per connected pair of bare TCP connections.
func tcpPairCost(t *testing.T, n int) float64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, n)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	before := memInUse()
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		conns = append(conns, c, <-accepted)
	}
	cost := float64(memInUse()-before) / float64(n)
	for _, c := range conns {
		_ = c.Close()
	}
	return cost
}

// memInUse is the heap and stack in use after a collection.
func memInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

func readUntil(t *testing.T, c net.Conn, want []byte) {
	var got []byte
	buf := make([]byte, 512)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	for !bytes.Contains(got, want) {
		n, err := c.Read(buf)
		require.NoError(t, err, "read %q", got)
		got = append(got, buf[:n]...)
	}
	require.NoError(t, c.SetReadDeadline(time.Time{}))
}

// measureFanOut publishes rate events per second for d while clients
// read them, and reports the publish→frame latency over every frame.
func measureFanOut(t *testing.T, clients, rate int, d time.Duration) {
	g := newLiveGateway(t, liveOptions{})
	var mu sync.Mutex
	var latencies []time.Duration
	var wg sync.WaitGroup
	total := rate * int(d/time.Second)
	for range clients {
		c := openStream(t, g.url+"/stream")
		c.requireConnected(t)
		wg.Go(func() {
			var mine []time.Duration
			for f := range c.frames {
				if f.event != "message" {
					continue
				}
				var ev struct {
					Metadata struct{ SentAt int64 } `json:"metadata"`
					Seq      int                    `json:"seq"`
				}
				if json.Unmarshal([]byte(f.data), &ev) != nil {
					return
				}
				mine = append(mine, time.Since(time.Unix(0, ev.Metadata.SentAt)))
				if ev.Seq == total {
					break
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	// Baseline: the same events read by a bare ordered consumer, as the
	// hub reads them, without HTTP and fan-out.
	var baseline []time.Duration
	baseDone := make(chan struct{})
	oc, err := g.js.OrderedConsumer(context.Background(), schemas.StreamName, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	cc, err := oc.Consume(func(msg jetstream.Msg) {
		var ev struct {
			Metadata struct{ SentAt int64 } `json:"metadata"`
		}
		if json.Unmarshal(msg.Data(), &ev) == nil {
			baseline = append(baseline, time.Since(time.Unix(0, ev.Metadata.SentAt)))
		}
		if len(baseline) == total {
			close(baseDone)
		}
	})
	require.NoError(t, err)
	defer cc.Stop()

	const tick = 10 * time.Millisecond
	perTick := rate * int(tick) / int(time.Second)
	ticker := time.NewTicker(tick)
	for sent := 0; sent < total; sent += perTick {
		<-ticker.C
		publishTimed(t, g.js, perTick)
	}
	ticker.Stop()
	wg.Wait()
	<-baseDone
	require.Len(t, latencies, clients*total, "every client got every event")
	p99, base := quantileMs(latencies, 0.99), quantileMs(baseline, 0.99)
	report(t, map[string]any{"bench": "sse_fanout_p99", "value": p99, "unit": "ms", "baseline": base,
		"ratio": p99 / base, "p50_ms": quantileMs(latencies, 0.5), "max_ms": quantileMs(latencies, 1),
		"clients": clients, "events_per_s": rate, "events": total,
		"slow_consumer_drops": promValue(g.reg, slowDrops)})
}

// quantileMs is the q-quantile of ds in milliseconds; it sorts ds.
func quantileMs(ds []time.Duration, q float64) float64 {
	slices.Sort(ds)
	return float64(ds[int(q*float64(len(ds)-1))].Microseconds()) / 1000
}

// publishTimed publishes n events whose metadata carries the send time.
func publishTimed(t *testing.T, js jetstream.JetStream, n int) {
	futures := make([]jetstream.PubAckFuture, n)
	for i := range futures {
		now := time.Now()
		body, err := json.Marshal(schemas.Event{ID: fmt.Sprint(now.UnixNano(), i), EventType: "page_view", UserID: "u1",
			Timestamp: now.UnixMilli(), ReceivedAt: now.UnixMilli(),
			Metadata: json.RawMessage(fmt.Sprintf(`{"sentAt":%d,"path":"/products/42"}`, now.UnixNano()))})
		require.NoError(t, err)
		futures[i], err = js.PublishMsgAsync(&nats.Msg{Subject: schemas.Subject("page_view"), Data: body})
		require.NoError(t, err)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatal(err)
		}
	}
}

func report(t *testing.T, result map[string]any) {
	b, err := json.Marshal(result)
	require.NoError(t, err)
	fmt.Println(string(b))
}
