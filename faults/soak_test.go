package faults

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSoak runs a standalone (as a process) under a steady workload —
// writers posting events, SSE clients following the stream, a reader
// paging GET /events — for KILN_SOAK_DURATION, printing every 10 s the
// process's RSS, goroutines, open files and the projector's lag. make soak
// DURATION=10m runs it.
func TestSoak(t *testing.T) {
	d := os.Getenv("KILN_SOAK_DURATION")
	if d == "" {
		t.Skip("make soak DURATION=10m (KILN_SOAK_DURATION)")
	}
	duration, err := time.ParseDuration(d)
	require.NoError(t, err, "KILN_SOAK_DURATION")
	port, admin := free(t), free(t)
	_, portNum, _ := strings.Cut(port, ":")
	_, adminNum, _ := strings.Cut(admin, ":")
	sa := newProc(t, "standalone", map[string]string{
		"KILN_DATA_DIR": t.TempDir(), "PORT": portNum, "ADMIN_PORT": adminNum, "NATS_PORT": portOf(t),
		"MONGO_PORT": portOf(t), "GRPC_ADDR": free(t), "LOG_LEVEL": "warn",
	})
	sa.start()
	base := "http://" + port
	waitReady(t, base+"/readyz")

	w := startWorkload(t, base, 2, 5*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for range 10 {
		wg.Go(func() { followStream(ctx, base) })
	}
	wg.Go(func() {
		client := &http.Client{Timeout: 10 * time.Second}
		for ctx.Err() == nil {
			if resp, err := client.Get(base + "/events?limit=100"); err == nil {
				_ = resp.Body.Close()
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	})

	fmt.Printf("%8s %8s %10s %6s %10s %8s\n", "elapsed", "acked", "rss_kib", "fds", "goroutines", "lag")
	start := time.Now()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for time.Since(start) < duration {
		<-tick.C
		pid := sa.pid()
		require.NotZero(t, pid, "the standalone is running")
		goroutines, gok := promSum("http://"+admin+"/metrics", "go_goroutines")
		if !gok || goroutines == 0 {
			if resp, err := http.Get("http://" + admin + "/metrics"); err == nil {
				b := make([]byte, 400)
				n, _ := resp.Body.Read(b)
				_ = resp.Body.Close()
				t.Logf("admin %s answered %d %q", admin, resp.StatusCode, b[:n])
			}
		}
		lag, _ := promSum("http://"+admin+"/metrics", "kiln_projector_lag_messages")
		line := fmt.Sprintf("%8s %8d %10d %6d %10.0f %8.0f", time.Since(start).Round(time.Second), w.ackedCount(),
			rssKiB(pid), fdCount(pid), goroutines, lag)
		fmt.Println(line)
		t.Log(line)
	}
	w.finish()
}

// portOf is a free port number.
func portOf(t *testing.T) string {
	_, p, _ := strings.Cut(free(t), ":")
	return p
}

// followStream reads GET /stream until ctx is done, reconnecting.
func followStream(ctx context.Context, base string) {
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/stream", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
			}
			_ = resp.Body.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// rssKiB is the process's resident set (VmRSS), 0 when unknown.
func rssKiB(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// fdCount is the number of open files of the process.
func fdCount(pid int) int {
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0
	}
	return len(entries)
}
