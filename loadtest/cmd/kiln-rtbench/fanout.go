package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// benchFanout connects o.sioClients /chat clients (the Go client of
// sioclient.go, all in this process), reads the server's RSS before and
// after, then has one more client send o.sioRate messages/s for
// o.sioDuration and measures every delivery's latency (the sent time is in
// the message text). It also reports the CPU this process (the clients)
// and the server used while sending, so a client-bound result shows.
func benchFanout(ctx context.Context, o options, stdout, stderr io.Writer) error {
	before := rss(o.pid)
	recv, connectErrs, firstErr, err := connectReceivers(ctx, o)
	defer func() {
		for _, r := range recv {
			_ = r.c.Close()
		}
	}()
	if err != nil {
		return err
	}
	after := rss(o.pid)
	fmt.Fprintf(stderr, "kiln-rtbench: %d /chat clients connected (%d refused or failed)\n", len(recv), connectErrs)
	if firstErr != nil {
		fmt.Fprintf(stderr, "kiln-rtbench: first connect error: %v\n", firstErr)
	}
	if len(recv) == 0 {
		return fmt.Errorf("socketio_fanout: no client connected")
	}
	var wg sync.WaitGroup
	for _, r := range recv {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.run()
		}()
	}
	cpu0, srv0 := selfCPU(), procCPU(o.pid)
	start := time.Now()
	sender, sent, sendSecs, err := sendMessages(ctx, o)
	if err != nil {
		return err
	}
	defer sender.Close()
	// Drain: wait until every client has every message, or 10 s more.
	expected := int64(sent) * int64(len(recv))
	drain := time.Now().Add(10 * time.Second)
	for time.Now().Before(drain) && deliveredSum(recv) < expected && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond) // polling a counter; not a synchronisation
	}
	cpu1, srv1 := selfCPU(), procCPU(o.pid)
	cut := 0
	for _, r := range recv {
		if r.ended.Load() {
			cut++
		}
	}
	for _, r := range recv {
		_ = r.c.Close()
	}
	wg.Wait()

	var hist latencyHist
	var delivered int64
	var last time.Time
	for _, r := range recv {
		hist.merge(&r.hist)
		delivered += r.delivered.Load()
		if r.last.After(last) {
			last = r.last
		}
	}
	window := max(last.Sub(start).Seconds(), sendSecs)
	wall := time.Since(start).Seconds()
	l := line{"bench": "socketio_fanout", "value": round1(float64(delivered) / window), "unit": "messages/s delivered",
		"baseline": round1(float64(expected) / sendSecs), "ratio": round3(float64(delivered) / float64(max(expected, 1))),
		"clients": len(recv), "target_clients": o.sioClients, "connect_errors": connectErrs,
		"sent_per_s": round1(float64(sent) / sendSecs), "target_sent_per_s": o.sioRate,
		"delivered": delivered, "lost": expected - delivered, "clients_cut": cut,
		"p50_ms": hist.percentile(0.5), "p99_ms": hist.percentile(0.99), "max_ms": hist.percentile(1), "target_p99_ms": 250,
		"client_cpu_cores": round3((cpu1 - cpu0) / wall), "client": "Go raw-WebSocket Socket.IO client, in kiln-rtbench",
		"baseline_is": "every message sent delivered to every client, per second of sending"}
	if srv0 >= 0 && srv1 >= 0 {
		l["server_cpu_cores"] = round3((srv1 - srv0) / wall)
		// The server's CPU per delivery, whatever else the machine runs
		// (it includes storing and projecting the sent messages).
		l["server_cpu_us_per_delivery"] = round3((srv1 - srv0) * 1e6 / float64(max(delivered, 1)))
	}
	l["client_cpu_us_per_delivery"] = round3((cpu1 - cpu0) * 1e6 / float64(max(delivered, 1)))
	if before > 0 && after > 0 {
		l["rss_per_client_bytes"] = (after - before) / int64(len(recv))
		l["rss_bytes"] = after
	}
	return emit(stdout, l)
}

// receiver is one connected /chat client of the bench.
type receiver struct {
	c         *sioConn
	delivered atomic.Int64
	hist      latencyHist
	last      time.Time   // of the last bench message (read after run returns)
	ended     atomic.Bool // the connection ended (the server cut it, before the bench closed it)
}

var (
	benchPrefix = []byte(`42/chat,["message",`)
	benchText   = []byte(`"text":"b:`)
)

func (r *receiver) run() {
	for {
		_, p, err := r.c.next()
		if err != nil {
			r.ended.Store(true)
			return
		}
		if !bytes.HasPrefix(p, benchPrefix) {
			continue
		}
		i := bytes.Index(p, benchText)
		if i < 0 {
			continue
		}
		var us int64
		for _, ch := range p[i+len(benchText):] {
			if ch < '0' || ch > '9' {
				break
			}
			us = us*10 + int64(ch-'0')
		}
		r.last = time.Now()
		r.hist.add(r.last.UnixMicro() - us)
		r.delivered.Add(1)
	}
}

func deliveredSum(recv []*receiver) int64 {
	var n int64
	for _, r := range recv {
		n += r.delivered.Load()
	}
	return n
}

// connectReceivers opens o.sioClients /chat clients, 64 handshakes at a time.
func connectReceivers(ctx context.Context, o options) ([]*receiver, int, error, error) {
	var mu sync.Mutex
	var recv []*receiver
	var first error
	failed := 0
	var g errgroup.Group
	g.SetLimit(64)
	for range o.sioClients {
		g.Go(func() error {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			c, err := dialSIOPatiently(cctx, o.url, "/chat", o.token)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if failed++; first == nil {
					first = err
				}
				return nil
			}
			recv = append(recv, &receiver{c: c})
			return nil
		})
	}
	_ = g.Wait()
	return recv, failed, first, ctx.Err()
}

// sendMessages emits o.sioRate messages/s for o.sioDuration from one more
// client, each text "b:<sent time in µs>"; what that client receives is
// read and dropped. The caller closes the client (after the drain: closing
// at once could drop messages the server has not read yet).
func sendMessages(ctx context.Context, o options) (*sioConn, int, float64, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	s, err := dialSIOPatiently(cctx, o.url, "/chat", o.token)
	cancel()
	if err != nil {
		return nil, 0, 0, fmt.Errorf("sender: %w", err)
	}
	go func() {
		for {
			if _, _, err := s.next(); err != nil {
				return
			}
		}
	}()
	sent := 0
	start := time.Now()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	var batch []byte
	for ctx.Err() == nil {
		<-tick.C
		el := time.Since(start)
		due := int(el.Seconds() * float64(o.sioRate))
		batch = batch[:0]
		for ; sent < due; sent++ {
			msg := `42/chat,["message",{"author":"bench","text":"b:` + strconv.FormatInt(time.Now().UnixMicro(), 10) + `"}]`
			batch = appendClientFrame(batch, opText, []byte(msg))
		}
		if len(batch) > 0 {
			if err := s.writeRaw(batch); err != nil {
				_ = s.Close()
				return nil, sent, 0, fmt.Errorf("sender: %w", err)
			}
		}
		if el >= o.sioDuration {
			return s, sent, el.Seconds(), nil
		}
	}
	_ = s.Close()
	return nil, sent, 0, ctx.Err()
}

// latencyHist counts latencies: 1 ms buckets below 1 s, 10 ms buckets to
// 11 s, one bucket beyond.
type latencyHist struct {
	n [2001]uint32
}

func (h *latencyHist) add(us int64) {
	ms := max(us/1000, 0)
	switch {
	case ms < 1000:
		h.n[ms]++
	case ms < 11000:
		h.n[1000+(ms-1000)/10]++
	default:
		h.n[2000]++
	}
}

func (h *latencyHist) merge(o *latencyHist) {
	for i, v := range o.n {
		h.n[i] += v
	}
}

// percentile is the upper bound in ms of the bucket holding quantile p
// (nil with no data; 11000 means "11 s or more").
func (h *latencyHist) percentile(p float64) any {
	var total float64
	for _, v := range h.n {
		total += float64(v)
	}
	if total == 0 {
		return nil
	}
	seen := 0.0
	last := 0
	for i, v := range h.n {
		if v == 0 {
			continue
		}
		last = i
		seen += float64(v)
		if seen >= total*p {
			break
		}
	}
	if last < 1000 {
		return last
	}
	return 1000 + (last-1000)*10
}

// selfCPU is the CPU time (user + system) this process used, in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// procCPU is the CPU time of pid in seconds (from /proc), -1 when unknown.
func procCPU(pid int) float64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// Fields after the command (which may hold spaces) in parentheses.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// rss is the resident set size of pid in bytes, 0 when unknown.
func rss(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
