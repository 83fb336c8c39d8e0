package socketio

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReplayConnBoundsWrites: with the library's zero write deadline, a
// write to a peer that reads nothing still fails, at the write timeout.
func TestReplayConnBoundsWrites(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	rc := &replayConn{Conn: server, r: bufio.NewReader(bytes.NewReader([]byte("GET / HTTP/1.1\r\n\r\n"))),
		closed: make(chan struct{}), writeTimeout: 50 * time.Millisecond}
	require.NoError(t, rc.SetWriteDeadline(time.Time{}))
	_, err := rc.Write([]byte("frame"))
	require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "got %v", err)

	line := make([]byte, 3)
	_, err = rc.Read(line)
	require.NoError(t, err)
	require.Equal(t, "GET", string(line), "the replayed request comes first")
	require.NoError(t, rc.Close())
	select {
	case <-rc.closed:
	default:
		t.Fatal("Close did not signal the hijack handler")
	}
}
