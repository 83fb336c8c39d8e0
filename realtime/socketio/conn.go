package socketio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// errCut fails the library's writes to a connection that was cut.
var errCut = errors.New("socket.io connection cut")

// replayConn is a hijacked WebSocket connection as the library sees it.
//
// Reads return the replayed request bytes first, then the connection's.
//
// Writes never touch the socket: every byte goes into one ordered queue of
// frames that the connection's writer goroutine flushes with one writev
// per batch. Two producers share that queue: the library (gorilla's
// handshake response and its frames, copied) and the fan-out (pre-encoded
// broadcast frames, shared by every client: encoded once). A broadcast
// frame is only ever queued between two of the library's messages, never
// inside one: the library's writes are parsed just enough (frame headers)
// to know where its messages end.
//
// A client whose queue holds more than maxFrames, or more than maxBytes, is
// cut: what is queued is
// dropped and a close frame (1013, "slow consumer") is sent instead, as the
// SSE hub ends a slow stream with a reason. A client that accepts nothing
// for writeTimeout fails its write and is closed too.
type replayConn struct {
	net.Conn
	r            *bufio.Reader
	writeTimeout time.Duration
	maxFrames    int
	maxBytes     int
	onCut        func(error)

	once   sync.Once
	closed chan struct{} // closed once the socket is closed
	wake   chan struct{}

	mu       sync.Mutex
	q        [][]byte // frames to write, in order
	held     [][]byte // broadcast frames waiting for the library's message to end
	spare    [][]byte
	bytes    int   // bytes in q and held
	dead     error // cut or failed: the library's writes fail, broadcasts drop
	closing  bool  // Close was called: flush, then close
	upgraded bool  // the HTTP upgrade response went out; frames follow
	// The library's message in progress: bytes of its current frame still
	// to come, and whether its last data frame lacked FIN.
	frameLeft int
	inMessage bool
}

func newReplayConn(c net.Conn, r *bufio.Reader, writeTimeout time.Duration, maxFrames, maxBytes int, onCut func(error)) *replayConn {
	if onCut == nil {
		onCut = func(error) {}
	}
	return &replayConn{Conn: c, r: r, writeTimeout: writeTimeout, maxFrames: max(maxFrames, 1), maxBytes: max(maxBytes, 1), onCut: onCut,
		closed: make(chan struct{}), wake: make(chan struct{}, 1)}
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// SetWriteDeadline is the writer's business (writeTimeout per flush).
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

func (c *replayConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

// Write queues a copy of p, the library's bytes.
func (c *replayConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil || c.closing {
		return 0, fmt.Errorf("write: %w", net.ErrClosed)
	}
	c.q = append(c.q, append([]byte(nil), p...))
	c.bytes += len(p)
	if !c.upgraded {
		// gorilla writes the whole 101 response in one write.
		c.upgraded = len(p) > 12 && string(p[:12]) == "HTTP/1.1 101"
	} else {
		c.track(p)
	}
	if c.frameLeft == 0 && !c.inMessage && len(c.held) > 0 {
		c.q = append(c.q, c.held...)
		clear(c.held)
		c.held = c.held[:0]
	}
	c.signal()
	c.checkLen()
	return len(p), nil
}

// track follows the library's frames through p (server frames: unmasked).
func (c *replayConn) track(p []byte) {
	for len(p) > 0 {
		if c.frameLeft > 0 {
			n := min(c.frameLeft, len(p))
			c.frameLeft -= n
			p = p[n:]
			continue
		}
		if len(p) < 2 {
			return // gorilla never splits a header; nothing to follow
		}
		fin, op, n, hdr := p[0]&0x80 != 0, p[0]&0x0f, int(p[1]&0x7f), 2
		switch n {
		case 126:
			if len(p) < 4 {
				return
			}
			n, hdr = int(binary.BigEndian.Uint16(p[2:4])), 4
		case 127:
			if len(p) < 10 {
				return
			}
			n, hdr = int(binary.BigEndian.Uint64(p[2:10])), 10
		}
		if op < 0x8 { // data frame (control frames may sit inside a message)
			c.inMessage = !fin
		}
		c.frameLeft = hdr + n
	}
}

// enqueue queues shared broadcast frames (never written to, never copied).
func (c *replayConn) enqueue(frames [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil || c.closing {
		return
	}
	for _, f := range frames {
		c.bytes += len(f)
	}
	if c.frameLeft > 0 || c.inMessage {
		c.held = append(c.held, frames...)
	} else {
		c.q = append(c.q, frames...)
	}
	c.signal()
	c.checkLen()
}

func (c *replayConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// checkLen cuts a client that fell maxFrames or maxBytes behind (mu held).
func (c *replayConn) checkLen() {
	switch {
	case len(c.q)+len(c.held) > c.maxFrames:
		c.dead = fmt.Errorf("slow consumer: more than %d frames queued", c.maxFrames)
	case c.bytes > c.maxBytes:
		c.dead = fmt.Errorf("slow consumer: more than %d bytes queued", c.maxBytes)
	default:
		return
	}
	clear(c.q)
	clear(c.held)
	c.q, c.held, c.bytes = c.q[:0], c.held[:0], 0
	if c.upgraded && c.frameLeft == 0 && !c.inMessage {
		cf := closeFrame(1013, "slow consumer")
		c.q = append(c.q, cf)
		c.bytes = len(cf)
	}
	c.closing = true
	go c.onCut(c.dead)
}

// Close flushes what is queued (within writeTimeout), then closes.
func (c *replayConn) Close() error {
	c.mu.Lock()
	c.closing = true
	c.signal()
	c.mu.Unlock()
	return nil
}

// writeLoop flushes the queue until the connection is closed; run it in
// its own goroutine after the hijack.
func (c *replayConn) writeLoop() {
	defer c.shut()
	for range c.wake {
		for {
			c.mu.Lock()
			batch, closing := c.q, c.closing
			c.q = c.spare[:0]
			for _, f := range batch {
				c.bytes -= len(f)
			}
			c.mu.Unlock()
			if len(batch) > 0 {
				_ = c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
				bufs := net.Buffers(batch)
				if _, err := bufs.WriteTo(c.Conn); err != nil {
					c.fail(err)
					return
				}
			}
			clear(batch)
			c.mu.Lock()
			c.spare = batch[:0]
			empty := len(c.q) == 0
			c.mu.Unlock()
			if empty && closing {
				return
			}
			if empty {
				break
			}
		}
	}
}

func (c *replayConn) fail(err error) {
	c.mu.Lock()
	if c.dead == nil {
		c.dead = err
	}
	c.closing = true
	clear(c.q)
	c.q, c.bytes = nil, 0
	c.mu.Unlock()
}

// shut closes the socket (the library's reader then ends) and tells the
// hijack handler.
func (c *replayConn) shut() {
	_ = c.Conn.Close()
	c.once.Do(func() { close(c.closed) })
}

// closeFrame is a WebSocket close frame with a status code and reason.
func closeFrame(code uint16, reason string) []byte {
	b := []byte{0x88, byte(2 + len(reason)), byte(code >> 8), byte(code)}
	return append(b, reason...)
}
