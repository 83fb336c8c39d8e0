package socketio

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/kilnhq/kiln/httpserver/tokens"
)

// slowRoom holds a namespace's clients that the fan-out cannot write to
// directly (HTTP long-polling, or a transport upgraded from it): the
// library emits to them as before.
const slowRoom socket.Room = "kiln:library-emit"

// scopedRoom holds the clients that connected with a subscriber token:
// they get only the events the token allows, through the library, and no
// client's order:update rebroadcast (it is no stored event to check).
const scopedRoom socket.Room = "kiln:scoped"

// fanout is one namespace's broadcast to its clients. A WebSocket client
// gets each broadcast as a WebSocket frame encoded once for all of them
// (server frames are unmasked, so every client gets identical bytes),
// queued on its connection (replayConn); the others through the library.
type fanout struct {
	ns   socket.Namespace
	nsp  string
	mu   sync.RWMutex
	ws   map[*replayConn]int // connection -> sockets of this namespace on it
	slow atomic.Int64        // sockets in slowRoom
	// scoped are the sockets of subscriber tokens, with their claims.
	scoped map[*socket.Socket]*tokens.Claims
}

func newFanout(ns socket.Namespace, nsp string) *fanout {
	return &fanout{ns: ns, nsp: nsp, ws: map[*replayConn]int{}, scoped: map[*socket.Socket]*tokens.Claims{}}
}

// join adds a connected socket, until it disconnects; a subscriber
// token's socket (claims not nil) gets only what the claims allow.
func (f *fanout) join(sock *socket.Socket, claims *tokens.Claims) {
	if claims != nil {
		sock.Join(scopedRoom)
		f.mu.Lock()
		f.scoped[sock] = claims
		f.mu.Unlock()
		_ = sock.On("disconnect", func(...any) {
			f.mu.Lock()
			delete(f.scoped, sock)
			f.mu.Unlock()
		})
		return
	}
	rc := directConn(sock)
	if rc == nil {
		sock.Join(slowRoom)
		f.slow.Add(1)
		_ = sock.On("disconnect", func(...any) { f.slow.Add(-1) })
		return
	}
	f.mu.Lock()
	f.ws[rc]++
	f.mu.Unlock()
	_ = sock.On("disconnect", func(...any) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.ws[rc]--; f.ws[rc] <= 0 {
			delete(f.ws, rc)
		}
	})
}

// directConn is the socket's connection when it is a WebSocket the mount
// hijacked, else nil.
func directConn(sock *socket.Socket) *replayConn {
	conn := sock.Conn()
	if conn == nil || conn.Transport() == nil || conn.Transport().Name() != "websocket" {
		return nil
	}
	req := conn.Request()
	if req == nil || req.Websocket == nil || req.Websocket.Conn == nil {
		return nil
	}
	rc, _ := req.Websocket.NetConn().(*replayConn)
	return rc
}

// message is one event to broadcast: its name and JSON-encodable data,
// and the type and user of the stored event it comes from.
type message struct {
	event     string
	data      any
	typ, user string
}

// send broadcasts msgs, in order, to every client of the namespace.
func (f *fanout) send(msgs []message) error {
	frames := make([][]byte, 0, len(msgs))
	for _, m := range msgs {
		fr, err := eventFrame(f.nsp, m.event, m.data)
		if err != nil {
			return err
		}
		frames = append(frames, fr)
	}
	f.mu.RLock()
	for rc := range f.ws {
		rc.enqueue(frames)
	}
	type scopedSock struct {
		sock   *socket.Socket
		claims *tokens.Claims
	}
	scoped := make([]scopedSock, 0, len(f.scoped))
	for sock, claims := range f.scoped {
		scoped = append(scoped, scopedSock{sock, claims})
	}
	f.mu.RUnlock()
	for _, sc := range scoped { // through the library, outside the lock
		for _, m := range msgs {
			if sc.claims.Allows(m.typ, m.user) {
				_ = sc.sock.Emit(m.event, m.data)
			}
		}
	}
	if f.slow.Load() > 0 {
		for _, m := range msgs {
			_ = f.ns.To(slowRoom).Emit(m.event, m.data)
		}
	}
	return nil
}

// eventFrame is the WebSocket text frame of a Socket.IO EVENT packet in
// an Engine.IO message packet: `42<nsp>,["<event>",<data>]`, exactly what
// the library writes for Emit(event, data).
func eventFrame(nsp, event string, data any) ([]byte, error) {
	body, err := json.Marshal([]any{event, data})
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", nsp, event, err)
	}
	payload := make([]byte, 0, 3+len(nsp)+len(body))
	payload = append(payload, "42"...)
	if nsp != "/" {
		payload = append(payload, nsp...)
		payload = append(payload, ',')
	}
	payload = append(payload, body...)
	n := len(payload)
	b := make([]byte, 0, 10+n)
	switch {
	case n < 126:
		b = append(b, 0x81, byte(n))
	case n <= 0xffff:
		b = append(b, 0x81, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x81, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...), nil
}
