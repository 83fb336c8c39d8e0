package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"
)

// sioConn is a minimal Socket.IO v4 client over a raw WebSocket (Engine.IO
// 4, websocket transport only), so that the bench client costs little next
// to the server it measures: frames are parsed in place from one buffered
// reader, with no per-message allocation. The compat contract itself is
// proven with the real socket.io-client by the Node tests.
type sioConn struct {
	c   net.Conn
	r   *bufio.Reader
	nsp string
	wmu sync.Mutex
	buf []byte // payload of the last frame read
}

// WebSocket opcodes.
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
)

var errRefused = errors.New("namespace connection refused")

// dialSIOPatiently is dialSIO retrying a handshake refused 429 (past
// SOCKETIO_HANDSHAKE_RATE) every 100 ms until ctx ends, as socket.io-client
// retries it: for benches that measure connected clients, not admission.
func dialSIOPatiently(ctx context.Context, base, nsp, token string) (*sioConn, error) {
	for {
		s, err := dialSIO(ctx, base, nsp, token)
		if err == nil || !strings.Contains(err.Error(), " 429 ") {
			return s, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// dialSIO connects to nsp on the server at base (http://host:port) with
// token as handshake auth (none when empty) and waits for the namespace's
// CONNECT.
func dialSIO(ctx context.Context, base, nsp, token string) (*sioConn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u.Host, err)
	}
	s := &sioConn{c: c, r: bufio.NewReaderSize(c, 64<<10), nsp: nsp, buf: make([]byte, 0, 4096)}
	if err := s.handshake(ctx, u.Host, token); err != nil {
		_ = c.Close()
		return nil, err
	}
	return s, nil
}

func (s *sioConn) handshake(ctx context.Context, host, token string) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = s.c.SetDeadline(dl)
		defer func() { _ = s.c.SetDeadline(time.Time{}) }()
	}
	req := "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a2lsbi1ydGJlbmNoLWtleQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(s.c, req); err != nil {
		return fmt.Errorf("write upgrade: %w", err)
	}
	status, err := s.r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read upgrade response: %w", err)
	}
	if !strings.Contains(status, " 101 ") {
		return fmt.Errorf("upgrade refused: %s", strings.TrimSpace(status))
	}
	for {
		l, err := s.r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("read upgrade headers: %w", err)
		}
		if l == "\r\n" {
			break
		}
	}
	// Engine.IO open packet, then the namespace CONNECT with the auth.
	if _, _, err := s.next(); err != nil {
		return fmt.Errorf("read open packet: %w", err)
	}
	auth := ""
	if token != "" {
		b, _ := json.Marshal(map[string]string{"token": token})
		auth = string(b)
	}
	if err := s.send([]byte("40" + s.nsp + "," + auth)); err != nil {
		return err
	}
	for {
		_, p, err := s.next()
		if err != nil {
			return fmt.Errorf("wait for namespace connect: %w", err)
		}
		switch {
		case bytes.HasPrefix(p, []byte("40"+s.nsp+",")):
			return nil
		case bytes.HasPrefix(p, []byte("44"+s.nsp+",")):
			return fmt.Errorf("%w: %s", errRefused, p)
		}
	}
}

// next reads one frame and returns its opcode and payload (valid until the
// next call). It answers Engine.IO pings ("2") and WebSocket pings itself.
func (s *sioConn) next() (byte, []byte, error) {
	for {
		var h [2]byte
		if _, err := io.ReadFull(s.r, h[:]); err != nil {
			return 0, nil, err
		}
		op := h[0] & 0x0f
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(s.r, b[:]); err != nil {
				return 0, nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(s.r, b[:]); err != nil {
				return 0, nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if n > 16<<20 {
			return 0, nil, fmt.Errorf("frame of %d bytes", n)
		}
		if h[1]&0x80 != 0 { // servers do not mask; skip a key if one does
			if _, err := s.r.Discard(4); err != nil {
				return 0, nil, err
			}
		}
		if uint64(cap(s.buf)) < n {
			s.buf = make([]byte, n)
		}
		s.buf = s.buf[:n]
		if _, err := io.ReadFull(s.r, s.buf); err != nil {
			return 0, nil, err
		}
		switch {
		case op == opClose:
			return op, s.buf, fmt.Errorf("closed by the server: %q", s.buf)
		case op == opPing:
			if err := s.writeFrame(0xA, s.buf); err != nil {
				return 0, nil, err
			}
			continue
		case op == opText && len(s.buf) == 1 && s.buf[0] == '2':
			if err := s.send([]byte("3")); err != nil {
				return 0, nil, err
			}
			continue
		}
		return op, s.buf, nil
	}
}

// send writes one text frame (client frames are masked).
func (s *sioConn) send(p []byte) error { return s.writeFrame(opText, p) }

func (s *sioConn) writeFrame(op byte, p []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.c.Write(appendClientFrame(nil, op, p))
	return err
}

// writeRaw writes frames built with appendClientFrame in one call.
func (s *sioConn) writeRaw(frames []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.c.Write(frames)
	return err
}

// appendClientFrame appends p as one masked frame of opcode op.
func appendClientFrame(b []byte, op byte, p []byte) []byte {
	b = append(b, 0x80|op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	b = append(b, key[:]...)
	start := len(b)
	b = append(b, p...)
	for i := range p {
		b[start+i] ^= key[i&3]
	}
	return b
}

func (s *sioConn) Close() error { return s.c.Close() }
