package ingest_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Issue 21: hostile requests to POST /webhooks/{provider}. Each case ends
// with the server answering, the heap back near where it was and only the
// webhooks that verified stored, once each.

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// signedOld returns the old scheme's headers for body at ts (Unix ms).
func signedOld(provider, ts, body string) []string {
	return []string{"X-Signature", legacySignature(legacySecret, provider, ts, body), "X-Timestamp", ts}
}

// gzipOf is b gzipped.
func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func TestHostileInboundWebhooks(t *testing.T) {
	h := webhookHarness(t)
	baseHeap := heapInuse()
	var stored uint64
	done := func(t *testing.T) {
		t.Helper()
		resp, err := http.Get(h.url + "/healthz")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, stored, h.count(t, "events.>"), "events stored")
		var heap uint64
		require.Eventually(t, func() bool {
			heap = heapInuse()
			return heap <= baseHeap+32<<20
		}, time.Minute, 100*time.Millisecond, "heap back near its base")
		t.Logf("heap %d KiB (base %d KiB)", heap>>10, baseHeap>>10)
	}
	send := func(t *testing.T, provider string, body []byte, headers ...string) response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, h.url+"/webhooks/"+provider, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		return h.do(t, req)
	}

	t.Run("compressed", func(t *testing.T) {
		bomb := gzipOfZeros(t, 16<<20) // 16 MiB of zeros in ~16 KB
		small := gzipOf(t, []byte(orderPayload))
		var deflated bytes.Buffer
		w := zlib.NewWriter(&deflated)
		_, err := w.Write(make([]byte, 4<<20))
		require.NoError(t, err)
		require.NoError(t, w.Close())
		for _, tc := range []struct {
			name, enc string
			body      []byte
			status    int
		}{
			{"gzip bomb, unsigned", "gzip", bomb, http.StatusRequestEntityTooLarge},
			{"deflate bomb, unsigned", "deflate", deflated.Bytes(), http.StatusRequestEntityTooLarge},
			{"stacked encodings", "gzip, gzip", bomb, http.StatusUnsupportedMediaType},
			{"unknown encoding", "zstd", []byte(orderPayload), http.StatusUnsupportedMediaType},
			{"not gzip at all", "gzip", []byte(orderPayload), http.StatusBadRequest},
			{"truncated gzip", "gzip", small[:len(small)/2], http.StatusBadRequest},
		} {
			r := send(t, "demo", tc.body, append(signedOld("demo", nowMillis(), orderPayload), "Content-Encoding", tc.enc)...)
			requireProblem(t, r, tc.status)
			require.NotContains(t, fmt.Sprint(r.body), "gzip: ", "%s: the decoder's own error is not the answer", tc.name)
			require.NotContains(t, fmt.Sprint(r.body), "flate: ", tc.name)
		}
		done(t)
	})

	t.Run("huge", func(t *testing.T) {
		big := `{"type":"order.created","data":{"pad":"` + strings.Repeat("x", h.config.MaxBodyBytes) + `"}}`
		req, err := http.NewRequest(http.MethodPost, h.url+"/webhooks/demo", strings.NewReader(big))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		for i, hs := 0, signedOld("demo", nowMillis(), big); i+1 < len(hs); i += 2 {
			req.Header.Set(hs[i], hs[i+1])
		}
		if r, ok := h.doOverLimit(t, req); ok {
			requireProblem(t, r, http.StatusRequestEntityTooLarge)
		}
		// Headers past the read buffer: fasthttp's 431, not a crash.
		req, err = http.NewRequest(http.MethodPost, h.url+"/webhooks/demo", strings.NewReader(orderPayload))
		require.NoError(t, err)
		req.Header.Set("X-Signature", strings.Repeat("a", 64<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil { // the reset may overtake the answer, as above
			require.True(t, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE), "%v", err)
		} else {
			resp.Body.Close()
			require.GreaterOrEqual(t, resp.StatusCode, 400)
			require.Less(t, resp.StatusCode, 500)
		}
		// A deep document within the limit.
		deep := `{"type":"x.deep","data":{"a":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}}`
		r := send(t, "demo", []byte(deep), signedOld("demo", nowMillis(), deep)...)
		require.Less(t, r.status, 500, "%v", r.body)
		if r.status == http.StatusAccepted {
			stored++
		}
		done(t)
	})

	t.Run("malformed", func(t *testing.T) {
		for name, body := range map[string]string{
			"not json":           `{"type":`,
			"two objects":        orderPayload + orderPayload,
			"invalid UTF-8 type": "{\"type\":\"order\xff\",\"data\":{}}",
			"invalid UTF-8 user": "{\"type\":\"x.y\",\"data\":{\"customerEmail\":\"\xfe\"}}",
			"lone surrogate":     `{"type":"x.y","data":{"k":"\ud800"}}`,
			"nul in type":        `{"type":"x\u0000y","data":{}}`,
			"empty":              ``,
		} {
			r := send(t, "demo", []byte(body), signedOld("demo", nowMillis(), body)...)
			requireProblem(t, r, http.StatusBadRequest)
			require.NotEmpty(t, r.body["detail"], name)
		}
		done(t)
	})

	t.Run("bad signatures", func(t *testing.T) {
		ms := nowMillis()
		good := legacySignature(legacySecret, "demo", ms, orderPayload)
		farMs := strconv.FormatInt(20_000_000_000_000, 10) // year 2603
		farS := "20000000000"
		for _, tc := range []struct {
			name     string
			provider string
			headers  []string
		}{
			{"short hex", "demo", []string{"X-Signature", good[:62], "X-Timestamp", ms}},
			{"long hex", "demo", []string{"X-Signature", good + "00", "X-Timestamp", ms}},
			{"not hex", "demo", []string{"X-Signature", strings.Repeat("zz", 32), "X-Timestamp", ms}},
			{"timestamp with a sign", "demo", []string{"X-Signature", good, "X-Timestamp", "+" + ms}},
			{"timestamp in exponent form", "demo", []string{"X-Signature", good, "X-Timestamp", "1.7e12"}},
			{"timestamp past int64", "demo", []string{"X-Signature", good, "X-Timestamp", "99999999999999999999"}},
			{"signed, centuries ahead", "demo", []string{"X-Signature", legacySignature(legacySecret, "demo", farMs, orderPayload), "X-Timestamp", farMs}},
			{"signed, max int64", "demo", []string{"X-Signature", legacySignature(legacySecret, "demo", "9223372036854775807", orderPayload), "X-Timestamp", "9223372036854775807"}},
			{"standard, centuries ahead", "shop", []string{"webhook-id", "far", "webhook-timestamp", farS,
				"webhook-signature", standardSignature(t, shopSecretOld, "far", farS, orderPayload)}},
			{"standard, a thousand wrong entries", "shop", []string{"webhook-id", "m", "webhook-timestamp", nowSeconds(),
				"webhook-signature", strings.Repeat("v1,AAAA ", 1000)}},
		} {
			r := send(t, tc.provider, []byte(orderPayload), tc.headers...)
			requireProblem(t, r, http.StatusUnauthorized)
			require.NotContains(t, fmt.Sprint(r.body), "order.created", "%s: no request bytes echoed", tc.name)
		}
		done(t)
	})

	t.Run("replayed", func(t *testing.T) {
		ms := nowMillis()
		sig := legacySignature(legacySecret, "demo", ms, orderPayload)
		var wg sync.WaitGroup
		statuses := make([]int, 40)
		for i := range statuses {
			wg.Go(func() {
				spelled := sig
				if i%2 == 1 {
					spelled = strings.ToUpper(sig)
				}
				statuses[i] = send(t, "demo", []byte(orderPayload), "X-Signature", spelled, "X-Timestamp", ms).status
			})
		}
		wg.Wait()
		for i, s := range statuses {
			require.Equal(t, http.StatusAccepted, s, "replay %d", i)
		}
		stored++
		// Standard Webhooks: the same webhook-id, re-signed later (a
		// sender's retry) or replayed, is one event.
		for i := range 5 {
			ts := strconv.FormatInt(time.Now().Unix()+int64(i), 10)
			r := send(t, "shop", []byte(orderPayload), "webhook-id", "msg_replayed", "webhook-timestamp", ts,
				"webhook-signature", standardSignature(t, shopSecretOld, "msg_replayed", ts, orderPayload))
			require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
		}
		stored++
		done(t)
	})

	t.Run("reordered", func(t *testing.T) {
		// Sent newest first: each is stored once with its own timestamp.
		now := time.Now()
		var sent []string
		for i := range 3 {
			ts := strconv.FormatInt(now.Add(-time.Duration(i)*time.Minute).UnixMilli(), 10)
			body := fmt.Sprintf(`{"type":"order.reordered","data":{"n":%d}}`, i)
			r := send(t, "demo", []byte(body), signedOld("demo", ts, body)...)
			require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
			sent = append(sent, ts)
			stored++
		}
		require.EqualValues(t, 3, h.count(t, "events.order.reordered"))
		require.Equal(t, sent[2], strconv.FormatInt(lastEvent(t, h, "events.order.reordered").Timestamp, 10),
			"the last one stored carries its own (oldest) timestamp")
		done(t)
	})
}
