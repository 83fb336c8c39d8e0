package standalone_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	"github.com/kilnhq/kiln/testsupport"
)

// Issue 13 item 7 against the standalone (what `make run` serves): every
// pipelined request on the public and the admin port gets its answer, in
// order, and a malformed header is answered without quoting the request.
func TestStandalonePipeliningAndMalformedHeaders(t *testing.T) {
	t.Parallel()
	adminPort := strconv.Itoa(testsupport.FreePort(t))
	in := standalonetest.Start(t, t.TempDir(), "ADMIN_PORT", adminPort)
	public := strings.TrimPrefix(in.Base, "http://")

	dial := func(addr string) (net.Conn, *bufio.Reader) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		require.NoError(t, conn.SetDeadline(time.Now().Add(60*time.Second)))
		return conn, bufio.NewReader(conn)
	}
	read := func(br *bufio.Reader) (int, string) {
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	for _, addr := range []string{public, "127.0.0.1:" + adminPort} {
		conn, br := dial(addr)
		_, err := conn.Write([]byte(strings.Repeat("GET /healthz HTTP/1.1\r\nHost: kiln\r\n\r\n", 3)))
		require.NoError(t, err)
		for i := range 3 {
			status, body := read(br)
			require.Equal(t, 200, status, "%s answer %d: %s", addr, i, body)
		}
	}

	conn, br := dial(public)
	var reqs strings.Builder
	for i := range 20 {
		body := fmt.Sprintf(`{"id":"sa-pipe-%02d","eventType":"pipe","userId":"u","timestamp":1700000000}`, i)
		fmt.Fprintf(&reqs, "POST /events HTTP/1.1\r\nHost: kiln\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
	_, err := conn.Write([]byte(reqs.String()))
	require.NoError(t, err)
	for i := range 20 {
		status, body := read(br)
		require.Equal(t, 202, status, body)
		require.Contains(t, body, fmt.Sprintf(`"id":"sa-pipe-%02d"`, i), "answers in request order")
	}

	conn, br = dial(public)
	_, err = conn.Write([]byte("POST /events HTTP/1.1\r\nHost: kiln\r\nAuthorization: Bearer sekrit\r\nIdempotency-Key: a\nb\r\n" +
		"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"))
	require.NoError(t, err)
	status, body := read(br)
	require.Equal(t, 400, status, body)
	require.NotContains(t, body, "sekrit")
	require.NotContains(t, body, "Authorization")
}
