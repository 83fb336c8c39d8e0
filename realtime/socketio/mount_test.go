package socketio

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const upgradeResponse = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"

func newTestConn(t *testing.T, writeTimeout time.Duration, maxFrames, maxBytes int, onCut func(error)) (*replayConn, net.Conn) {
	t.Helper()
	server, client := net.Pipe()
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	rc := newReplayConn(server, bufio.NewReader(bytes.NewReader([]byte("GET / HTTP/1.1\r\n\r\n"))),
		writeTimeout, maxFrames, maxBytes, onCut)
	go rc.writeLoop()
	return rc, client
}

// frame is a server (unmasked) frame.
func frame(fin bool, op byte, payload string) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	return append([]byte{b0, byte(len(payload))}, payload...)
}

// readFrames reads n frames from c and returns their payloads.
func readFrames(t *testing.T, c net.Conn, n int) []string {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Minute)))
	r := bufio.NewReader(c)
	var got []string
	for range n {
		var h [2]byte
		_, err := io.ReadFull(r, h[:])
		require.NoError(t, err)
		size := int(h[1] & 0x7f)
		if size == 126 {
			var b [2]byte
			_, err = io.ReadFull(r, b[:])
			require.NoError(t, err)
			size = int(binary.BigEndian.Uint16(b[:]))
		}
		p := make([]byte, size)
		_, err = io.ReadFull(r, p)
		require.NoError(t, err)
		got = append(got, string(p))
	}
	return got
}

// TestReplayConnBoundsWrites: the library's writes are queued (they never
// block it), and a peer that reads nothing is closed at the write timeout.
func TestReplayConnBoundsWrites(t *testing.T) {
	rc, _ := newTestConn(t, 50*time.Millisecond, 100, 1<<20, nil)
	line := make([]byte, 3)
	_, err := rc.Read(line)
	require.NoError(t, err)
	require.Equal(t, "GET", string(line), "the replayed request comes first")

	_, err = rc.Write([]byte(upgradeResponse))
	require.NoError(t, err, "a write is queued, not blocked on the peer")
	select {
	case <-rc.closed:
	case <-time.After(time.Minute):
		t.Fatal("a peer that reads nothing was not closed at the write timeout")
	}
	_, err = rc.Write([]byte("more"))
	require.Error(t, err, "writes after the failure fail")
}

// TestBroadcastNeverInsideALibraryMessage: a broadcast frame queued while
// the library is in the middle of a frame (header written, payload not) or
// of a fragmented message waits for the message's end.
func TestBroadcastNeverInsideALibraryMessage(t *testing.T) {
	rc, client := newTestConn(t, time.Minute, 100, 1<<20, nil)
	go func() {
		_, _ = rc.Write([]byte(upgradeResponse))
		whole := frame(true, 0x1, "4lib-1")
		_, _ = rc.Write(whole[:3]) // header and part of the payload
		rc.enqueue([][]byte{frame(true, 0x1, "B1")})
		_, _ = rc.Write(whole[3:])
		_, _ = rc.Write(frame(false, 0x1, "4frag-a")) // a message in two fragments
		rc.enqueue([][]byte{frame(true, 0x1, "B2")})
		_, _ = rc.Write(frame(true, 0xA, "pong")) // a control frame may sit inside it
		_, _ = rc.Write(frame(true, 0x0, "frag-b"))
		rc.enqueue([][]byte{frame(true, 0x1, "B3")})
	}()
	r := bufio.NewReader(client)
	require.NoError(t, client.SetReadDeadline(time.Now().Add(time.Minute)))
	head := make([]byte, len(upgradeResponse))
	_, err := io.ReadFull(r, head)
	require.NoError(t, err)
	require.Equal(t, upgradeResponse, string(head))
	got := readFrames(t, &bufConn{Conn: client, r: r}, 7)
	require.Equal(t, []string{"4lib-1", "B1", "4frag-a", "pong", "frag-b", "B2", "B3"}, got)
}

// TestSlowClientIsCutWithAReason: a client that falls more than the
// buffer behind, in frames or in bytes (SOCKETIO_CLIENT_BUFFER_BYTES: a
// few large frames), gets what was written, then a close frame 1013 with
// the reason, and the cut is reported.
func TestSlowClientIsCutWithAReason(t *testing.T) {
	for _, tt := range []struct {
		name                string
		maxFrames, maxBytes int
		payload             string
		why                 string
	}{
		{"frames", 3, 1 << 20, "", "more than 3 frames queued"},
		{"bytes", 100, 400, strings.Repeat("x", 100), "more than 400 bytes queued"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			testSlowClientIsCut(t, tt.maxFrames, tt.maxBytes, tt.payload, tt.why)
		})
	}
}

func testSlowClientIsCut(t *testing.T, maxFrames, maxBytes int, payload, why string) {
	cut := make(chan error, 1)
	rc, client := newTestConn(t, time.Minute, maxFrames, maxBytes, func(err error) { cut <- err })
	_, err := rc.Write([]byte(upgradeResponse)) // the writer blocks on it: nobody reads yet
	require.NoError(t, err)
	for i := range 4 {
		rc.enqueue([][]byte{frame(true, 0x1, string(rune('a'+i))+payload)})
	}
	select {
	case err := <-cut:
		require.ErrorContains(t, err, "slow consumer: "+why)
	case <-time.After(time.Minute):
		t.Fatal("the cut was not reported")
	}
	require.NoError(t, client.SetReadDeadline(time.Now().Add(time.Minute)))
	all, err := io.ReadAll(client)
	require.NoError(t, err, "the connection ends with EOF after the close frame")
	require.True(t, bytes.HasSuffix(all, []byte("\x88\x0f\x03\xf5slow consumer")), "close 1013 and the reason last: %q", all)
	require.NotContains(t, string(all), "\x81\x01d", "the queued frames are dropped")
	select {
	case <-rc.closed:
	case <-time.After(time.Minute):
		t.Fatal("the cut connection was not closed")
	}
}

// bufConn reads through r.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestEventFrameIsTheLibrarysPacket(t *testing.T) {
	fr, err := eventFrame("/chat", "message", chatOut{Author: "a", Text: "t", CreatedAt: "c"})
	require.NoError(t, err)
	want := `42/chat,["message",{"author":"a","text":"t","createdAt":"c"}]`
	require.Equal(t, append([]byte{0x81, byte(len(want))}, want...), fr)
	long, err := eventFrame("/", "x", string(make([]byte, 200)))
	require.NoError(t, err)
	require.Equal(t, []byte{0x81, 126}, long[:2])
	require.Equal(t, len(long)-4, int(binary.BigEndian.Uint16(long[2:4])))
	require.Equal(t, "42[", string(long[4:7]), "the default namespace is not written")
}
