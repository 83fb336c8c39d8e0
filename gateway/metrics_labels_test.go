package gateway_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Requests of different methods on one keep-alive connection leave every
// metric label as it was recorded: fasthttp reuses the request buffer, and
// a label aliasing it turned "GET" into "POS", two series with the same
// labels, and the admin /metrics into a 500.
func TestMetricLabelsSurviveTheNextRequest(t *testing.T) {
	t.Parallel()
	g := newLiveGateway(t, liveOptions{withIngest: true})
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	r := bufio.NewReader(conn)
	host := strings.TrimPrefix(g.url, "http://")
	event := fmt.Sprintf(`{"eventType":"a","userId":"u","timestamp":%d}`, time.Now().UnixMilli())
	for range 3 {
		_, err := fmt.Fprintf(conn, "GET /events?limit=1 HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		require.NoError(t, err)
		resp, err := http.ReadResponse(r, nil)
		require.NoError(t, err)
		_ = resp.Body.Close()
		_, err = fmt.Fprintf(conn, "POST /events HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			host, len(event), event)
		require.NoError(t, err)
		resp, err = http.ReadResponse(r, nil)
		require.NoError(t, err)
		_ = resp.Body.Close()
	}
	families, err := g.reg.Gather()
	require.NoError(t, err, "the registry gathers: no series was changed under it")
	for _, f := range families {
		if f.GetName() != "kiln_gateway_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "method" {
					require.Contains(t, []string{"GET", "HEAD", "POST"}, l.GetValue())
				}
			}
		}
	}
}
