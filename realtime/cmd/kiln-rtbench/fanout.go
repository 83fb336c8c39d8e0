package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// nodeProc is one socketio-bench.js process and its JSON lines.
type nodeProc struct {
	cmd   *exec.Cmd
	lines chan map[string]any
}

func startNode(ctx context.Context, o options, stderr io.Writer, args ...string) (*nodeProc, error) {
	script, err := filepath.Abs(filepath.Join(o.nodeDir, "socketio-bench.js"))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Dir = o.nodeDir
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &nodeProc{cmd: cmd, lines: make(chan map[string]any, 4)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				p.lines <- m
			}
		}
	}()
	return p, nil
}

func (p *nodeProc) next() (map[string]any, error) {
	m, ok := <-p.lines
	if !ok {
		return nil, fmt.Errorf("socketio-bench.js ended early: %v", p.cmd.Wait())
	}
	return m, nil
}

// benchFanout connects o.sioClients /chat clients spread over o.sioProcs
// Node processes, reads the server's RSS before and after, then has one more
// process send o.sioRate messages/s and merges the receivers' latencies.
func benchFanout(ctx context.Context, o options, stdout, stderr io.Writer) error {
	secs := strconv.Itoa(int(o.sioDuration.Seconds()))
	before := rss(o.pid)
	var recv []*nodeProc
	defer func() {
		for _, p := range recv {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	}()
	connected, connectErrs := 0.0, 0.0
	for i := range o.sioProcs {
		n := o.sioClients / o.sioProcs
		if i < o.sioClients%o.sioProcs {
			n++
		}
		p, err := startNode(ctx, o, stderr, "recv", o.url, o.token, strconv.Itoa(n), secs)
		if err != nil {
			return err
		}
		recv = append(recv, p)
	}
	for _, p := range recv {
		m, err := p.next()
		if err != nil {
			return err
		}
		connected += num(m["connected"])
		connectErrs += num(m["connectErrors"])
	}
	after := rss(o.pid)
	fmt.Fprintf(stderr, "kiln-rtbench: %.0f /chat clients connected (%d processes)\n", connected, o.sioProcs)
	sender, err := startNode(ctx, o, stderr, "send", o.url, o.token, strconv.Itoa(o.sioRate), secs)
	if err != nil {
		return err
	}
	sent, err := sender.next()
	if err != nil {
		return err
	}
	_ = sender.cmd.Wait()
	hist := map[int]float64{}
	delivered, window := 0.0, 0.0
	for _, p := range recv {
		m, err := p.next()
		if err != nil {
			return err
		}
		delivered += num(m["delivered"])
		window = max(window, num(m["seconds"]))
		h, _ := m["hist"].(map[string]any)
		for k, v := range h {
			ms, _ := strconv.Atoi(k)
			hist[ms] += num(v)
		}
	}
	expected := num(sent["sent"]) * connected
	sentSecs := max(num(sent["seconds"]), 1)
	l := line{"bench": "socketio_fanout", "value": round1(delivered / max(window, 1)), "unit": "messages/s delivered",
		"baseline": round1(expected / sentSecs), "ratio": round3(delivered / max(expected, 1)),
		"clients": connected, "target_clients": o.sioClients, "connect_errors": connectErrs, "client_processes": o.sioProcs,
		"sent_per_s": round1(num(sent["sent"]) / sentSecs), "target_sent_per_s": o.sioRate,
		"p50_ms": percentile(hist, delivered, 0.5), "p99_ms": percentile(hist, delivered, 0.99),
		"max_ms": percentile(hist, delivered, 1), "target_p99_ms": 250,
		"baseline_is": "every message sent delivered to every client, per second of sending"}
	if before > 0 && after > 0 && connected > 0 {
		l["rss_per_client_bytes"] = (after - before) / int64(connected)
		l["rss_bytes"] = after
	}
	return emit(stdout, l)
}

func percentile(hist map[int]float64, total, p float64) any {
	if total == 0 {
		return nil
	}
	keys := make([]int, 0, len(hist))
	for k := range hist {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	seen := 0.0
	for _, k := range keys {
		seen += hist[k]
		if seen >= total*p {
			return k
		}
	}
	return keys[len(keys)-1]
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

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}
