package faults

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSocketIOFloodLeavesMemoryBounded is issue 21 item 6's Socket.IO
// acceptance: 2,000 WebSocket clients of a kiln run process join /chat and
// each sends a 1 MiB message. Every message is refused (the connection is
// closed: SOCKETIO_MAX_PACKET_BYTES, 64 KiB), nothing is stored, and the
// process's resident memory stays bounded while /healthz keeps answering.
// It prints VmRSS and VmHWM before and after, and the slowest /healthz
// seen (measured on this machine, not asserted). make test-faults runs it.
func TestSocketIOFloodLeavesMemoryBounded(t *testing.T) {
	if !full() {
		t.Skip("in the full fault suite only: make test-faults (KILN_FAULTS=1)")
	}
	const clients = 2000
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
	for range 3 { // warm the path up: the baseline holds what one client needs anyway
		c, err := dialSocketIO(port)
		require.NoError(t, err)
		require.NoError(t, c.Close())
	}
	pid := sa.pid()
	rss0, hwm0 := memKiB(t, pid)

	// /healthz probes and the peak resident set while the flood runs.
	stop := make(chan struct{})
	var probes, slowest atomic.Int64
	var watch sync.WaitGroup
	watch.Go(func() {
		client := &http.Client{Timeout: time.Minute}
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			resp, err := client.Get(base + "/healthz")
			took := time.Since(start)
			if err == nil {
				_ = resp.Body.Close()
			}
			probes.Add(1)
			if int64(took) > slowest.Load() {
				slowest.Store(int64(took))
			}
			time.Sleep(10 * time.Millisecond) // a probe's pace, not synchronisation
		}
	})

	// Connected by 50 dialers at once, so all are in before the first
	// ping timeout (45 s) could close the early ones.
	conns := make([]net.Conn, clients)
	errs := make([]error, clients)
	var dials sync.WaitGroup
	var next atomic.Int64
	for range 50 {
		dials.Go(func() {
			for i := int(next.Add(1)) - 1; i < clients; i = int(next.Add(1)) - 1 {
				conns[i], errs[i] = dialSocketIO(port)
			}
		})
	}
	dials.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	rssConnected, _ := memKiB(t, pid)
	var closed atomic.Int64
	var flood sync.WaitGroup
	frame := maskedTextFrame("42/chat," + `["message",{"author":"flood","text":"` + strings.Repeat("x", 1<<20) + `"}]`)
	for _, c := range conns {
		flood.Go(func() {
			_, _ = c.Write(frame) // the server may close before all of it is written
			if _, err := io.Copy(io.Discard, c); err == nil || !isTimeout(err) {
				closed.Add(1) // EOF or reset: the server closed it
			}
			_ = c.Close()
		})
	}
	flood.Wait()
	close(stop)
	watch.Wait()
	rss1, hwm1 := memKiB(t, pid)

	line := fmt.Sprintf("socket.io flood: %d clients x 1 MiB message: %d closed by the server; VmRSS %d KiB -> %d KiB with the clients connected -> %d KiB after; VmHWM %d -> %d KiB; slowest /healthz %s of %d",
		clients, closed.Load(), rss0, rssConnected, rss1, hwm0, hwm1, time.Duration(slowest.Load()).Round(time.Millisecond), probes.Load())
	t.Log(line)
	fmt.Fprintln(os.Stderr, line)
	require.EqualValues(t, clients, closed.Load(), "every 1 MiB message closes its connection")
	require.Less(t, hwm1-rss0, 512*1024, "the peak stayed within 512 MB of the baseline")

	resp, err := http.Get(base + "/events?type=chat.message")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, "[]", strings.TrimSpace(string(body)), "nothing stored")
}

// dialSocketIO opens an Engine.IO WebSocket session on addr and joins /chat.
func dialSocketIO(addr string) (net.Conn, error) {
	// Past SOCKETIO_HANDSHAKE_RATE a handshake is answered 429: retry, as
	// socket.io-client does.
	for deadline := time.Now().Add(5 * time.Minute); ; {
		c, err := dialSocketIOOnce(addr)
		if err == nil || !strings.Contains(err.Error(), " 429 ") || time.Now().After(deadline) {
			return c, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func dialSocketIOOnce(addr string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	_, err = fmt.Fprintf(c, "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: kiln\r\nUpgrade: websocket\r\n"+
		"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	r := bufio.NewReader(c)
	status := ""
	if err == nil {
		status, err = r.ReadString('\n')
	}
	if err == nil && !strings.Contains(status, " 101 ") {
		err = fmt.Errorf("upgrade answered %q", status)
	}
	for err == nil {
		var l string
		if l, err = r.ReadString('\n'); l == "\r\n" {
			break
		}
	}
	var open, joined string
	if err == nil {
		open, err = readFrame(r)
	}
	if err == nil {
		_, err = c.Write(maskedTextFrame("40/chat,"))
	}
	if err == nil {
		joined, err = readFrame(r)
	}
	if err == nil && (!strings.HasPrefix(open, "0{") || !strings.HasPrefix(joined, "40/chat,")) {
		err = fmt.Errorf("open %q, join %q", open, joined)
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return &bufferedConn{Conn: c, r: r}, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// readFrame reads one unfragmented server frame's payload.
func readFrame(r *bufio.Reader) (string, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", err
	}
	n := int(h[1] & 0x7f)
	var ext []byte
	switch n {
	case 126:
		ext = make([]byte, 2)
	case 127:
		ext = make([]byte, 8)
	}
	if ext != nil {
		if _, err := io.ReadFull(r, ext); err != nil {
			return "", err
		}
		n = 0
		for _, b := range ext {
			n = n<<8 | int(b)
		}
	}
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return string(p), err
}

// maskedTextFrame is a client's text frame (masked with a zero key).
func maskedTextFrame(payload string) []byte {
	n := len(payload)
	b := []byte{0x81}
	switch {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, 0, 0, 0, 0) // a zero mask leaves the payload as it is
	return append(b, payload...)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
