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
	"strconv"
	"strings"
)

// benchFanout runs testsupport/node/socketio-bench.js and reads the
// server's RSS before the clients connect and once they are connected.
func benchFanout(ctx context.Context, o options, stdout, stderr io.Writer) error {
	script, err := filepath.Abs(filepath.Join(o.nodeDir, "socketio-bench.js"))
	if err != nil {
		return err
	}
	before := rss(o.pid)
	cmd := exec.CommandContext(ctx, "node", script, o.url, o.token, strconv.Itoa(o.sioClients),
		strconv.Itoa(o.sioRate), strconv.Itoa(int(o.sioDuration.Seconds())))
	cmd.Dir = o.nodeDir
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	var connected, result map[string]any
	var afterConnect int64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if _, ok := m["connected"]; ok {
			connected, afterConnect = m, rss(o.pid)
			fmt.Fprintf(stderr, "kiln-rtbench: %v /chat clients connected\n", m["connected"])
			continue
		}
		result = m
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("socketio-bench.js: %w", err)
	}
	if result == nil {
		return fmt.Errorf("socketio-bench.js printed no result")
	}
	clients, _ := result["clients"].(float64)
	expected, _ := result["expected"].(float64)
	delivered, _ := result["delivered"].(float64)
	l := line{"bench": "socketio_fanout", "value": round1(num(result["deliveredPerS"])), "unit": "messages/s delivered",
		"baseline": round1(expected / o.sioDuration.Seconds()), "ratio": round3(delivered / max(expected, 1)),
		"clients": clients, "target_clients": o.sioClients, "connect_errors": connected["connectErrors"],
		"sent_per_s": result["sentPerS"], "target_sent_per_s": o.sioRate,
		"p50_ms": result["p50Ms"], "p99_ms": result["p99Ms"], "max_ms": result["maxMs"], "target_p99_ms": 250,
		"baseline_is": "every message sent delivered to every client (sent x (clients+1)) per second"}
	if before > 0 && afterConnect > 0 && clients > 0 {
		l["rss_per_client_bytes"] = (afterConnect - before) / int64(clients)
		l["rss_bytes"] = afterConnect
	}
	return emit(stdout, l)
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
