package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
)

// benchFlood is issue 21's realtime acceptance run: o.floodStreams gRPC
// Subscribe streams whose filter never matches, and o.floodClients /chat
// clients each sending o.floodBytes messages as fast as the server reads
// them (redialling when it cuts them), for o.floodDuration, while one
// probe times GET /healthz every 100 ms and another samples the server's
// RSS. The baseline is /healthz timed the same way before the flood. The
// line says how many streams and clients were admitted, how the excess
// was refused (gRPC codes and the first message; Socket.IO close reasons)
// and whether any flood message was stored.
//
// The /healthz probe runs in a process of its own (this binary with -only
// healthz_probe), as a kubelet or a load balancer probes: inside this one
// its goroutine waited behind the 20,000 of the flood, and the p99 it saw
// (180-220 ms) was this process's scheduling, while a separate prober saw
// 17-19 ms from the same server.
func benchFlood(ctx context.Context, o options, stdout, stderr io.Writer) error {
	probe := &http.Client{Timeout: 10 * time.Second}
	total0, err := storedTotal(ctx, probe, o.url)
	if err != nil {
		return err
	}
	rss0 := rss(o.pid)
	base, err := probeProcess(ctx, o.url, 5*time.Second)
	if err != nil {
		return err
	}

	fctx, stop := context.WithCancel(ctx)
	defer stop()
	var during []time.Duration
	var probeErr error
	var rssMax atomic.Int64
	rssMax.Store(rss0)
	var probes sync.WaitGroup
	probes.Add(2)
	go func() { defer probes.Done(); during, probeErr = probeProcess(ctx, o.url, o.floodDuration) }()
	go func() {
		defer probes.Done()
		for t := time.NewTicker(250 * time.Millisecond); fctx.Err() == nil; <-t.C {
			if r := rss(o.pid); r > rssMax.Load() {
				rssMax.Store(r)
			}
		}
	}()

	streams := openStreams(fctx, o, stderr)
	clients := floodChat(fctx, o, stderr)
	select {
	case <-time.After(o.floodDuration):
	case <-ctx.Done():
	}
	streams.held.Store(streams.open.Load())
	stop()
	probes.Wait()
	if probeErr != nil {
		return probeErr
	}
	streams.wait()
	clients.wait()

	total1, err := storedTotal(ctx, probe, o.url)
	if err != nil {
		return err
	}
	l := line{"bench": "realtime_flood", "value": pctMs(during, 0.99), "unit": "ms p99 GET /healthz during the flood",
		"baseline": pctMs(base, 0.99), "ratio": round3(pctMs(during, 0.99) / max(pctMs(base, 0.99), 0.001)),
		"baseline_is": "GET /healthz p99 before the flood, same run", "target_ms": 100,
		"healthz_p50_ms": pctMs(during, 0.5), "healthz_max_ms": pctMs(during, 1), "healthz_probes": len(during),
		"healthz_failed":      countZero(during),
		"grpc_streams_target": o.floodStreams, "grpc_streams_held": streams.held.Load(),
		"grpc_refused": streams.refusedByCode(), "grpc_first_refusal": streams.firstRefusal(),
		"sio_clients_target": o.floodClients, "sio_message_bytes": o.floodBytes,
		"sio_connects": clients.connects.Load(), "sio_connect_errors": clients.connectErrs.Load(),
		"sio_messages_written": clients.written.Load(), "sio_cut": clients.cut.Load(),
		"sio_first_cut":       clients.firstCut(),
		"stored_during_flood": total1 - total0,
		"rss_before_bytes":    rss0, "rss_max_bytes": rssMax.Load(), "rss_after_bytes": rss(o.pid),
		"duration_s": o.floodDuration.Seconds()}
	return emit(stdout, l)
}

// probeProcess runs timeHealthz for d in a child process (this binary,
// -only healthz_probe) and returns what it measured.
func probeProcess(ctx context.Context, base string, d time.Duration) ([]time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("healthz probe: %w", err)
	}
	cmd := exec.CommandContext(ctx, self, "-only", "healthz_probe", "-url", base, "-flood-duration", d.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("healthz probe: %w", err)
	}
	var ns []int64
	if err := json.Unmarshal(out, &ns); err != nil {
		return nil, fmt.Errorf("healthz probe output: %w", err)
	}
	ds := make([]time.Duration, len(ns))
	for i, n := range ns {
		ds[i] = time.Duration(n)
	}
	return ds, nil
}

// benchHealthzProbe is the child of probeProcess: GET /healthz every 100 ms
// for o.floodDuration, printed as a JSON array of nanoseconds (0: failed).
func benchHealthzProbe(ctx context.Context, o options, stdout io.Writer) error {
	ds := timeHealthz(ctx, &http.Client{Timeout: 10 * time.Second}, o.url, o.floodDuration)
	ns := make([]int64, len(ds))
	for i, d := range ds {
		ns[i] = int64(d)
	}
	return json.NewEncoder(stdout).Encode(ns)
}

// timeHealthz times GET /healthz every 100 ms for d (0: until ctx ends);
// a failed probe is recorded as 0 and counted apart.
func timeHealthz(ctx context.Context, c *http.Client, base string, d time.Duration) []time.Duration {
	var out []time.Duration
	end := time.Now().Add(d)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for ctx.Err() == nil && (d == 0 || time.Now().Before(end)) {
		start := time.Now()
		req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, base+"/healthz", nil)
		resp, err := c.Do(req)
		took := time.Since(start)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			took = 0
		}
		out = append(out, took)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return out
}

func countZero(ds []time.Duration) int {
	n := 0
	for _, d := range ds {
		if d == 0 {
			n++
		}
	}
	return n
}

// pctMs is the p-th quantile of the successful probes, in ms.
func pctMs(ds []time.Duration, p float64) float64 {
	ok := slices.DeleteFunc(slices.Clone(ds), func(d time.Duration) bool { return d == 0 })
	if len(ok) == 0 {
		return 0
	}
	slices.Sort(ok)
	i := min(int(p*float64(len(ok))), len(ok)-1)
	return round3(float64(ok[i].Microseconds()) / 1000)
}

// storedTotal is the public GET /metrics' totalEventsLastMinute: a flood
// message that was stored raises it.
func storedTotal(ctx context.Context, c *http.Client, base string) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("realtime_flood: GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var n int64
	i := bytes.Index(b, []byte(`"totalEventsLastMinute":`))
	if resp.StatusCode != http.StatusOK || i < 0 {
		return 0, fmt.Errorf("realtime_flood: GET /metrics: %d %s", resp.StatusCode, b)
	}
	_, _ = fmt.Sscan(string(b[i+len(`"totalEventsLastMinute":`):]), &n)
	return n, nil
}

// floodStreams are the Subscribe streams of the flood.
type floodStreams struct {
	open    atomic.Int64 // held now
	held    atomic.Int64 // held when the flood ended
	mu      sync.Mutex
	refused map[string]int
	first   string
	wg      sync.WaitGroup
	conns   []*grpc.ClientConn
}

// openStreams opens o.floodStreams Subscribe streams, 500 per connection
// (under GRPC_MAX_CONCURRENT_STREAMS' default), each held until ctx ends.
func openStreams(ctx context.Context, o options, stderr io.Writer) *floodStreams {
	s := &floodStreams{refused: map[string]int{}}
	const perConn = 500
	sctx := ctx
	if o.key != "" {
		sctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+o.key)
	}
	for i := 0; i < o.floodStreams; i += perConn {
		cc, err := grpc.NewClient(o.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			s.refuse("dial", err.Error())
			continue
		}
		s.conns = append(s.conns, cc)
		client := kilnv1.NewEventServiceClient(cc)
		for range min(perConn, o.floodStreams-i) {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				st, err := client.Subscribe(sctx, &kilnv1.SubscribeRequest{Types: []string{"flood.never"}})
				if err == nil {
					s.open.Add(1)
					_, err = st.Recv() // blocks while admitted: nothing matches
					s.open.Add(-1)
				}
				if ctx.Err() == nil && err != nil {
					st, _ := status.FromError(err)
					s.refuse(st.Code().String(), st.Message())
				}
			}()
		}
	}
	fmt.Fprintf(stderr, "kiln-rtbench: %d Subscribe streams started over %d connections\n", o.floodStreams, len(s.conns))
	return s
}

func (s *floodStreams) refuse(code, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused[code]++
	if s.first == "" {
		s.first = code + ": " + msg
	}
}

func (s *floodStreams) refusedByCode() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.refused)
}

func (s *floodStreams) firstRefusal() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

func (s *floodStreams) wait() {
	s.wg.Wait()
	for _, c := range s.conns {
		_ = c.Close()
	}
}

// floodClients are the /chat clients of the flood.
type floodClients struct {
	connects, connectErrs, written, cut atomic.Int64
	mu                                  sync.Mutex
	first                               string
	wg                                  sync.WaitGroup
}

// floodChat runs o.floodClients /chat clients, each writing one
// o.floodBytes message after another until ctx ends and redialling when
// the server cuts it (its close reason is kept).
func floodChat(ctx context.Context, o options, stderr io.Writer) *floodClients {
	c := &floodClients{}
	text := strings.Repeat("x", max(o.floodBytes-64, 1))
	frame := appendClientFrame(nil, opText, []byte(`42/chat,["message",{"author":"flood","text":"`+text+`"}]`))
	dials := make(chan struct{}, 64) // handshakes at a time
	for range o.floodClients {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for ctx.Err() == nil {
				dials <- struct{}{}
				dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				s, err := dialSIO(dctx, o.url, "/chat", o.token)
				cancel()
				<-dials
				if err != nil {
					c.connectErrs.Add(1)
					c.note("connect: " + err.Error())
					select {
					case <-time.After(time.Second):
					case <-ctx.Done():
					}
					continue
				}
				c.connects.Add(1)
				c.flood(ctx, s, frame)
			}
		}()
	}
	fmt.Fprintf(stderr, "kiln-rtbench: %d /chat clients flooding %d-byte messages\n", o.floodClients, len(frame))
	return c
}

// flood writes frame until the server cuts s or ctx ends; a reader drains
// what the server sends and ends the connection's turn when it is cut.
func (c *floodClients) flood(ctx context.Context, s *sioConn, frame []byte) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := s.next(); err != nil {
				if ctx.Err() == nil {
					c.cut.Add(1)
					c.note("cut: " + err.Error())
				}
				return
			}
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		_ = s.Close()
	}()
	for ctx.Err() == nil {
		if err := s.writeRaw(frame); err != nil {
			break
		}
		c.written.Add(1)
	}
	<-done
}

func (c *floodClients) note(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first == "" {
		c.first = s
	}
}

func (c *floodClients) firstCut() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first
}

func (c *floodClients) wait() { c.wg.Wait() }
