package faults

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCompressedBombLeavesMemoryAlone is issue 21 item 3's acceptance: a
// 1 MB gzip of zeros (about 1 GB decoded) against POST /events, POST
// /webhooks/{provider} (no signature) and the webhooks admin API of a
// standalone process answers 413 and leaves its resident memory within
// 50 MB of what it was. It prints VmRSS and VmHWM before and after.
func TestCompressedBombLeavesMemoryAlone(t *testing.T) {
	port, admin := free(t), free(t)
	_, portNum, _ := strings.Cut(port, ":")
	_, adminNum, _ := strings.Cut(admin, ":")
	sa := newProc(t, "standalone", map[string]string{
		"KILN_DATA_DIR": t.TempDir(), "PORT": portNum, "ADMIN_PORT": adminNum, "NATS_PORT": portOf(t),
		"MONGO_PORT": portOf(t), "GRPC_ADDR": free(t), "LOG_LEVEL": "warn", "WEBHOOK_SECRET": "bomb-secret",
	})
	sa.start()
	base := "http://" + port
	waitReady(t, base+"/readyz")

	bomb := gzipZeros(t, 1_000_000)
	require.Less(t, len(bomb), 1<<20, "the bomb fits INGEST_MAX_BODY_BYTES on the wire")
	paths := []string{"/events", "/webhooks/demo", "/webhook-endpoints"}
	post := func(path string, body []byte, encoding string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if encoding != "" {
			req.Header.Set("Content-Encoding", encoding)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Warm every path up with a small compressed body, so the baseline
	// holds the buffers a request needs anyway.
	small := gzipBytes(t, []byte(`{"eventType":"warm","userId":"u","timestamp":1}`))
	for range 3 {
		for _, p := range paths {
			post(p, small, "gzip")
		}
	}
	pid := sa.pid()
	rss0, hwm0 := memKiB(t, pid)
	for _, p := range paths {
		status, body := post(p, bomb, "gzip")
		require.Equal(t, http.StatusRequestEntityTooLarge, status, "%s: %s", p, body)
		require.Contains(t, body, "Content-Encoding", p)
	}
	rss1, hwm1 := memKiB(t, pid)
	line := fmt.Sprintf("gzip bomb %d bytes (%d decoded) x %d paths: VmRSS %d -> %d KiB, VmHWM %d -> %d KiB",
		len(bomb), 1_000_000*1024, len(paths), rss0, rss1, hwm0, hwm1)
	t.Log(line)
	fmt.Fprintln(os.Stderr, line)
	require.Less(t, rss1-rss0, 50*1024, "VmRSS grew more than 50 MB")
	// VmHWM is the peak since the process started (start-up included):
	// the bombs must not have raised it past the baseline + 50 MB.
	require.LessOrEqual(t, hwm1, max(hwm0, rss0+50*1024), "the peak went more than 50 MB over the baseline")
	status, _ := post("/events", []byte(`{"eventType":"after","userId":"u","timestamp":1}`), "")
	require.Equal(t, http.StatusAccepted, status, "still answering")
}

// gzipZeros is kib KiB of zeros, gzipped at the best ratio.
func gzipZeros(t *testing.T, kib int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	require.NoError(t, err)
	zeros := make([]byte, 1024*1024)
	for left := kib * 1024; left > 0; left -= len(zeros) {
		_, err := w.Write(zeros[:min(left, len(zeros))])
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// memKiB is the process's VmRSS and VmHWM (its peak resident set).
func memKiB(t *testing.T, pid int) (rss, hwm int) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	for line := range strings.Lines(string(b)) {
		for name, dst := range map[string]*int{"VmRSS:": &rss, "VmHWM:": &hwm} {
			if v, ok := strings.CutPrefix(line, name); ok {
				*dst, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			}
		}
	}
	return rss, hwm
}
