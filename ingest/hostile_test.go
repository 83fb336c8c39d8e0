package ingest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/testsupport"
)

// Regression tests for issue 13 item 7: hostile input over raw sockets.

// rawConn is one TCP connection to addr with a deadline that keeps a broken
// server from hanging the test.
func rawConn(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(60*time.Second)))
	return conn, bufio.NewReader(conn)
}

// readResponse reads one response and its body.
func readResponse(t *testing.T, br *bufio.Reader) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func hostOf(url string) string { return strings.TrimPrefix(url, "http://") }

func postRequest(body string, headers ...string) string {
	var b strings.Builder
	b.WriteString("POST /events HTTP/1.1\r\nHost: kiln\r\nContent-Type: application/json\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

func TestPipelinedPostsAllAnsweredInOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	conn, br := rawConn(t, hostOf(h.url))
	var reqs strings.Builder
	for i := range 100 {
		reqs.WriteString(postRequest(fmt.Sprintf(`{"id":"pipe-%03d","eventType":"pipe","userId":"u","timestamp":%d}`, i, i+1)))
	}
	_, err := conn.Write([]byte(reqs.String()))
	require.NoError(t, err)
	for i := range 100 {
		resp, body := readResponse(t, br)
		require.Equal(t, 202, resp.StatusCode, "response %d: %s", i, body)
		var r struct{ ID string }
		require.NoError(t, json.Unmarshal(body, &r))
		require.Equal(t, fmt.Sprintf("pipe-%03d", i), r.ID, "responses come in request order")
	}
	require.Equal(t, uint64(100), h.count(t, "events.pipe"))
}

func TestPipelinedHealthzPublicAndAdmin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	admin := httpserver.NewAdminApp(prometheus.NewRegistry(), h.svc.Ready, testsupport.Logger(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpserver.ServeListener(ctx, admin, ln, 5*time.Second, testsupport.Logger(t)) }()
	t.Cleanup(func() { cancel(); <-done })
	for _, addr := range []string{hostOf(h.url), ln.Addr().String()} {
		conn, br := rawConn(t, addr)
		_, err := conn.Write([]byte(strings.Repeat("GET /healthz HTTP/1.1\r\nHost: kiln\r\n\r\n", 3)))
		require.NoError(t, err)
		for i := range 3 {
			resp, body := readResponse(t, br)
			require.Equal(t, 200, resp.StatusCode, "%s answer %d: %s", addr, i, body)
		}
	}
}

// problemOf reads a problem answer and returns its errors' fields.
func problemOf(t *testing.T, resp *http.Response, body []byte, status int) (map[string]any, []string) {
	t.Helper()
	require.Equal(t, status, resp.StatusCode, "body: %s", body)
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	var p map[string]any
	require.NoError(t, json.Unmarshal(body, &p), "body: %s", body)
	var fields []string
	if errs, ok := p["errors"].([]any); ok {
		for _, e := range errs {
			fields = append(fields, e.(map[string]any)["field"].(string))
		}
	}
	return p, fields
}

func TestInvalidUTF8InIDsIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, id := range []string{"\xf5x", "\xf6x"} {
		conn, br := rawConn(t, hostOf(h.url))
		_, err := conn.Write([]byte(postRequest(`{"id":"` + id + `","eventType":"utf","userId":"u","timestamp":1}`)))
		require.NoError(t, err)
		resp, body := readResponse(t, br)
		_, fields := problemOf(t, resp, body, 400)
		require.Equal(t, []string{"id"}, fields)
	}
	for _, key := range []string{"\xf5\xf5", "\xf6\xf6"} {
		conn, br := rawConn(t, hostOf(h.url))
		_, err := conn.Write([]byte(postRequest(`{"eventType":"utf","userId":"u","timestamp":1}`, "Idempotency-Key: "+key)))
		require.NoError(t, err)
		resp, body := readResponse(t, br)
		_, fields := problemOf(t, resp, body, 400)
		require.Equal(t, []string{"Idempotency-Key"}, fields)
	}
	// Elsewhere invalid UTF-8 is refused too, naming the field: never
	// silently replaced by U+FFFD.
	for _, tt := range []struct{ body, field string }{
		{"{\"eventType\":\"utf\",\"userId\":\"\xff\",\"timestamp\":1}", "userId"},
		{"{\"eventType\":\"utf\",\"userId\":\"u\",\"timestamp\":1,\"metadata\":{\"k\":\"\xff\"}}", "metadata.k"},
		{"{\"eventType\":\"utf\",\"userId\":\"u\",\"timestamp\":1,\"metadata\":{\"\xff\":1}}", "metadata"},
		{`{"eventType":"utf","userId":"u","timestamp":1,"metadata":{"k":"\ud800"}}`, "metadata.k"},
	} {
		conn, br := rawConn(t, hostOf(h.url))
		_, err := conn.Write([]byte(postRequest(tt.body)))
		require.NoError(t, err)
		resp, body := readResponse(t, br)
		_, fields := problemOf(t, resp, body, 400)
		require.Equal(t, []string{tt.field}, fields, "body %q", tt.body)
	}
	// A charset other than UTF-8 is refused: Kiln reads JSON as UTF-8.
	r := h.post(t, "application/json; charset=latin1", `{"eventType":"utf","userId":"u","timestamp":1}`)
	requireProblem(t, r, 415)
	require.Zero(t, h.count(t, "events.utf"))
}

func TestErrorBodiesNeverEchoTheRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	conn, br := rawConn(t, hostOf(h.url))
	req := "POST /events HTTP/1.1\r\nHost: kiln\r\nAuthorization: Bearer sekrit-token\r\nIdempotency-Key: a\nb\r\n" +
		"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
	_, err := conn.Write([]byte(req))
	require.NoError(t, err)
	resp, body := readResponse(t, br)
	require.Equal(t, 400, resp.StatusCode, "body: %s", body)
	require.NotContains(t, string(body), "sekrit")
	require.NotContains(t, string(body), "Authorization")
	require.NotContains(t, string(body), "Idempotency-Key: a")
}

func TestOversizeChunkedBodyNamesItsInstance(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	conn, br := rawConn(t, hostOf(h.url))
	chunk := strings.Repeat("x", 64*1024)
	var b strings.Builder
	b.WriteString("POST /events HTTP/1.1\r\nHost: kiln\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	for range 20 { // 1.25 MiB > the 1 MiB default
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	b.WriteString("0\r\n\r\n")
	_, _ = conn.Write([]byte(b.String()))
	resp, body := readResponse(t, br)
	p, _ := problemOf(t, resp, body, 413)
	require.Equal(t, "/events", p["instance"])
}

// A client trickling its body (slowloris) is answered 408 and cut off once
// the request read deadline passes, long before it has sent its body, while
// a client sending the same body at normal speed during the trickle is
// served. Measured in bytes sent at one byte per tick, not in wall-clock
// time: each slow client must be cut off within cutBy ticks (20 read
// deadlines; a loaded machine only sends fewer bytes per second); without
// the deadline the server keeps reading and the test fails at cutBy.
func TestSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	log := testsupport.Logger(t)
	const deadline, tick = time.Second, 100 * time.Millisecond
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: h.config.MaxBodyBytes, Log: log, ReadTimeout: deadline})
	h.svc.Register(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpserver.ServeListener(ctx, app, ln, 5*time.Second, log) }()
	t.Cleanup(func() { cancel(); <-done })

	const clients, bodyLen = 50, 600
	const cutBy = int(20 * deadline / tick) // bytes; far below bodyLen
	bodyOf := func(typ string) string {
		return `{"eventType":"` + typ + `","userId":"u","timestamp":1,"metadata":{"pad":"` + strings.Repeat("x", bodyLen-60) + `"}}`
	}
	body := bodyOf("slow")
	type outcome struct {
		sent   int
		status int // 0: closed without an answer
	}
	results := make(chan outcome, clients)
	for range clients {
		go func() {
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				results <- outcome{sent: -1}
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
			head := fmt.Sprintf("POST /events HTTP/1.1\r\nHost: kiln\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
			if _, err := conn.Write([]byte(head)); err != nil {
				results <- outcome{sent: -1}
				return
			}
			answered := make(chan int, 1) // the server's answer (or close) while we trickle
			go func() {
				status := 0
				if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
					status = resp.StatusCode
					resp.Body.Close()
				}
				answered <- status
			}()
			ticker := time.NewTicker(tick)
			defer ticker.Stop()
			for sent := 0; sent < cutBy; sent++ {
				select {
				case status := <-answered:
					results <- outcome{sent: sent, status: status}
					return
				case <-ticker.C:
				}
				if _, err := conn.Write([]byte{body[sent]}); err != nil {
					results <- outcome{sent: sent, status: <-answered}
					return
				}
			}
			results <- outcome{sent: cutBy} // still being read: not cut off
		}()
	}
	// The control: the same body at normal speed is served meanwhile.
	conn, br := rawConn(t, ln.Addr().String())
	_, err = conn.Write([]byte(postRequest(bodyOf("fast"))))
	require.NoError(t, err)
	resp, b := readResponse(t, br)
	require.Equal(t, 202, resp.StatusCode, "body: %s", b)

	for range clients {
		o := <-results
		require.GreaterOrEqual(t, o.sent, 0, "the slow client could not connect")
		require.Less(t, o.sent, cutBy, "the server still read the trickled body %d read deadlines on", cutBy*int(tick)/int(deadline))
		require.Equal(t, 408, o.status, "cut off with 408 after %d bytes", o.sent)
	}
	require.Zero(t, h.count(t, "events.slow"))
	require.EqualValues(t, 1, h.count(t, "events.fast"))
}
