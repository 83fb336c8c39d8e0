package ingest_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// gzipOfZeros is n zero bytes, gzipped (about n/1000 bytes).
func gzipOfZeros(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	require.NoError(t, err)
	_, err = w.Write(make([]byte, n))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// Issue 21 item 3: INGEST_MAX_BODY_BYTES holds on the decoded body of
// POST /events and of POST /webhooks/{provider} (before its signature is
// checked), and a compressed body within the limit is accepted.
func TestCompressedBodiesHoldTheLimitAfterDecoding(t *testing.T) {
	t.Parallel()
	h := webhookHarness(t)
	bomb := gzipOfZeros(t, 4*h.config.MaxBodyBytes)
	require.Less(t, len(bomb), h.config.MaxBodyBytes/10)
	for _, path := range []string{"/events", "/webhooks/demo"} {
		for _, enc := range []string{"gzip", "gzip, gzip"} {
			req, err := http.NewRequest(http.MethodPost, h.url+path, bytes.NewReader(bomb))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Content-Encoding", enc)
			r := h.do(t, req)
			want := http.StatusRequestEntityTooLarge
			if enc != "gzip" {
				want = http.StatusUnsupportedMediaType
			}
			requireProblem(t, r, want)
			require.Equal(t, "Content-Encoding", r.body["errors"].([]any)[0].(map[string]any)["field"], "%s %s", path, enc)
		}
	}

	var small bytes.Buffer
	w := gzip.NewWriter(&small)
	_, err := w.Write([]byte(`{"eventType":"gz","userId":"u","timestamp":1}`))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	req, err := http.NewRequest(http.MethodPost, h.url+"/events", &small)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	require.Equal(t, http.StatusAccepted, h.do(t, req).status)
	require.Equal(t, uint64(1), h.count(t, "events.gz"))
}
