package webhooks_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/webhooks"
)

// Issue 21: hostile requests to the webhooks admin API. Each case ends
// with the API answering, the heap back near where it was and no endpoint
// stored that should not be.

// rawAPI sends body as it is and returns the status and the answer.
func (h *harness) rawAPI(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// tryAPI is rawAPI returning the transport's error instead of failing.
func (h *harness) tryAPI(method, path, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// problemFields checks a 4xx problem+json answer and returns the fields
// it names.
func problemFields(t *testing.T, status int, answer []byte, want int, what string) []string {
	t.Helper()
	require.Equal(t, want, status, "%s: %.300s", what, answer)
	var p struct {
		Status int `json:"status"`
		Errors []struct {
			Field string `json:"field"`
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(answer, &p), "%s: %.300s", what, answer)
	require.Equal(t, want, p.Status, what)
	// instance is the request's path (RFC 9457); nothing else repeats
	// the request.
	var echo map[string]any
	require.NoError(t, json.Unmarshal(answer, &echo))
	delete(echo, "instance")
	b, err := json.Marshal(echo)
	require.NoError(t, err)
	require.Less(t, len(b), 32<<10, "%s: the answer is bounded, the request not echoed", what)
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	return fields
}

func (h *harness) endpointCount(t *testing.T) int {
	t.Helper()
	var list struct {
		Endpoints []endpointView `json:"endpoints"`
	}
	require.Equal(t, http.StatusOK, h.api(http.MethodGet, "/webhook-endpoints", nil, &list))
	return len(list.Endpoints)
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func TestHostileAdminAPI(t *testing.T) {
	h := newHarness(t, func(c *webhooks.Config) { c.AllowNetworks = nil }) // the guard as deployed
	require.Zero(t, h.endpointCount(t))
	baseHeap := heapInuse()
	endpoints := 0
	done := func(t *testing.T) {
		t.Helper()
		require.Equal(t, endpoints, h.endpointCount(t), "endpoints stored")
		var heap uint64
		require.Eventually(t, func() bool {
			heap = heapInuse()
			return heap <= baseHeap+32<<20
		}, time.Minute, 100*time.Millisecond, "heap %d KiB, base %d KiB", heap>>10, baseHeap>>10)
		t.Logf("heap %d KiB (base %d KiB)", heap>>10, baseHeap>>10)
	}

	t.Run("bad URLs", func(t *testing.T) {
		for _, u := range []string{"", "not a url", "/relative", "//a.example/hook", "ftp://a.example/", "javascript:alert(1)",
			"file:///etc/passwd", "gopher://a.example/", "http://", "https://", "http:/a.example", "https://user:pw@a.example/",
			"https://:pw@a.example/", "http://[::1", "http://a.example:99999999999/", "http://a b.example/", " https://a.example/",
			"https://a.example/\x00", "https://a.example/" + strings.Repeat("a", 2100)} {
			body, err := json.Marshal(map[string]string{"url": u})
			require.NoError(t, err)
			status, answer := h.rawAPI(t, http.MethodPost, "/webhook-endpoints", string(body))
			require.Equal(t, []string{"url"}, problemFields(t, status, answer, http.StatusBadRequest, fmt.Sprintf("url %.60q", u)))
		}
		done(t)
	})

	t.Run("private targets", func(t *testing.T) {
		rc := newReceiver(t) // on 127.0.0.1: loopback, refused
		port := rc.URL[strings.LastIndex(rc.URL, ":"):]
		for _, host := range []string{"127.0.0.1", "127.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "[64:ff9b::7f00:1]",
			"0.0.0.0", "10.0.0.1", "172.16.0.1", "192.168.0.1", "169.254.169.254", "100.64.0.1", "192.0.0.1", "198.18.0.1",
			"240.0.0.1", "255.255.255.255", "[fc00::1]", "[fe80::1]", "[64:ff9b::a00:1]", "[::]", "224.0.0.1"} {
			// Stored (the guard holds at connect time, where DNS cannot
			// fool it), but never reached.
			ep := h.createEndpoint("http://" + host + port + "/hook")
			endpoints++
			var test struct {
				OK      bool `json:"ok"`
				Attempt struct {
					Error string `json:"error"`
				} `json:"attempt"`
			}
			require.Equal(t, http.StatusOK, h.api(http.MethodPost, "/webhook-endpoints/"+ep.ID+"/test", nil, &test))
			require.False(t, test.OK, host)
			if !strings.HasPrefix(host, "127.1") && host != "localhost" {
				require.Contains(t, test.Attempt.Error, "refused to connect", host)
			}
		}
		require.Empty(t, rc.all(), "nothing reached the loopback receiver")
		done(t)
	})

	t.Run("huge lists and members", func(t *testing.T) {
		filters := make([]string, 101)
		for i := range filters {
			filters[i] = fmt.Sprintf("t%d.>", i)
		}
		for _, tc := range []struct {
			name, body string
			status     int
			field      string
		}{
			{"101 filters", toJSON(t, map[string]any{"url": "https://a.example/", "filters": filters}), 400, "filters"},
			{"a filter of 129 bytes", toJSON(t, map[string]any{"url": "https://a.example/", "filters": []string{strings.Repeat("a", 129)}}), 400, "filters[0]"},
			{"a description of 1025 bytes", toJSON(t, map[string]any{"url": "https://a.example/", "description": strings.Repeat("d", 1025)}), 400, "description"},
			{"250,000 bad filters", `{"url":"https://a.example/","filters":[` + strings.Repeat(`".",`, 250_000) + `"."]}`, 400, "filters"},
			{"a million filters", `{"url":"https://a.example/","filters":[` + strings.Repeat(`"a",`, 300_000) + `"a"]}`, 413, ""},
			{"a body of 2 MiB", `{"url":"https://a.example/","description":"` + strings.Repeat("d", 2<<20) + `"}`, 413, ""},
			{"a deep array", `{"url":"https://a.example/","filters":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`, 400, ""},
			{"an unknown member of 10 KB", `{"url":"https://a.example/","` + strings.Repeat("m", 10_000) + `":1}`, 400, "body"},
		} {
			if tc.status == http.StatusRequestEntityTooLarge {
				// Over the body limit the server answers 413 and closes
				// without reading the rest: a client still writing may get
				// the reset before the answer (TCP discards it). Either
				// way nothing is stored and the API keeps answering.
				if status, answer, err := h.tryAPI(http.MethodPost, "/webhook-endpoints", tc.body); err != nil {
					require.True(t, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE), "%s: %v", tc.name, err)
				} else {
					problemFields(t, status, answer, tc.status, tc.name)
				}
				continue
			}
			status, answer := h.rawAPI(t, http.MethodPost, "/webhook-endpoints", tc.body)
			fields := problemFields(t, status, answer, tc.status, tc.name)
			if tc.field != "" {
				require.Contains(t, fields, tc.field, tc.name)
			}
		}
		ok := filters[:100]
		for i := range ok {
			ok[i] = strings.Repeat("a", 124) + fmt.Sprintf("%02d.>", i)
		}
		h.createEndpoint("https://a.example/hook", ok...)
		endpoints++
		done(t)
	})

	t.Run("bad params", func(t *testing.T) {
		ep := h.createEndpoint("https://a.example/hook")
		endpoints++
		for _, tc := range []struct {
			method, path string
			status       int
			field        string
		}{
			{"GET", "/webhook-endpoints/" + ep.ID + "/deliveries?limit=abc", 400, "limit"},
			{"GET", "/webhook-endpoints/" + ep.ID + "/deliveries?limit=1001", 400, "limit"},
			{"GET", "/webhook-endpoints/" + ep.ID + "/deliveries?limit=-1", 400, "limit"},
			{"GET", "/webhook-endpoints/" + ep.ID + "/deliveries?status=%00", 400, "status"},
			{"GET", "/webhook-endpoints/" + ep.ID + "/deliveries?since=-1", 400, "since"},
			{"GET", "/webhook-endpoints/" + ep.ID + "/deliveries?since=1969-12-31T23:59:59Z", 400, "since"},
			{"POST", "/webhook-deliveries/redrive?since=0000-01-01T00:00:00Z", 400, "since"},
			{"POST", "/webhook-deliveries/redrive", 400, "since"},
			{"GET", "/webhook-endpoints/nope", 404, ""},
			{"GET", "/webhook-endpoints/" + url.PathEscape("{\"$ne\":null}"), 404, ""},
			{"GET", "/webhook-endpoints/" + strings.Repeat("x", 8000), 404, ""},
			{"GET", "/webhook-endpoints/%00/deliveries", 404, ""},
			{"PATCH", "/webhook-endpoints/nope", 404, ""},
			{"DELETE", "/webhook-endpoints/nope", 404, ""},
			{"POST", "/webhook-endpoints/nope/rotate-secret", 404, ""},
			{"POST", "/webhook-endpoints/nope/test", 404, ""},
			{"POST", "/webhook-deliveries/nope/redrive", 404, ""},
			{"GET", "/webhook-deliveries/nope", 404, ""},
		} {
			body := ""
			if tc.method == "PATCH" {
				body = `{"description":"x"}`
			}
			status, answer := h.rawAPI(t, tc.method, tc.path, body)
			fields := problemFields(t, status, answer, tc.status, tc.method+" "+tc.path[:min(len(tc.path), 80)])
			if tc.field != "" {
				require.Equal(t, []string{tc.field}, fields, tc.path)
			}
		}
		for _, body := range []string{`{"url":"https://a.example/"} {"url":"http://b.example/"}`, `{"url":1}`, `[]`, `{`,
			`{"filters":null,"url":"https://a.example/","url":"ftp://x"}`, "{\"description\":\"\xff\"}"} {
			status, answer := h.rawAPI(t, http.MethodPatch, "/webhook-endpoints/"+ep.ID, body)
			problemFields(t, status, answer, http.StatusBadRequest, fmt.Sprintf("PATCH %q", body))
		}
		var got endpointView
		require.Equal(t, http.StatusOK, h.api(http.MethodGet, "/webhook-endpoints/"+ep.ID, nil, &got))
		require.Equal(t, "https://a.example/hook", got.URL, "no refused change was applied")
		done(t)
	})
}
