package socketio

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"golang.org/x/time/rate"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/schemas/problem"
)

// Path is where the namespaces are served (the Socket.IO default).
const Path = "/socket.io/"

// mount carries Socket.IO's net/http handler on Fiber. Polling requests go
// through Fiber's net/http adaptor. A WebSocket upgrade cannot (fasthttp's
// adaptor cannot hijack), so the connection is hijacked from fasthttp and
// handed, with the request bytes replayed in front, to a net/http server
// that serves it alone: the handler then hijacks it as usual.
type mount struct {
	handler http.Handler
	origins httpserver.Origins
	poll    fiber.Handler
	server  *http.Server
	limits  connLimits
	onCut   func(error)
}

// connLimits bound the clients and what each may have queued.
type connLimits struct {
	writeTimeout time.Duration
	maxFrames    int // frames queued per WebSocket client
	maxBytes     int // bytes queued per WebSocket client
	maxClients   int // Engine.IO clients connected at once
	// clients is how many Engine.IO clients are connected.
	clients func() uint64
	// handshakes admits new Engine.IO sessions (nil: all).
	handshakes    *rate.Limiter
	handshakeRate float64
}

func newMount(h http.Handler, origins httpserver.Origins, limits connLimits, onCut func(error)) *mount {
	return &mount{handler: h, origins: origins, poll: adaptor.HTTPHandler(h), limits: limits, onCut: onCut,
		server: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
}

// Register mounts the Socket.IO endpoint on r.
func (s *Server) Register(r fiber.Router) {
	r.All(Path+"*", s.mount.serve)
}

func (m *mount) serve(c *fiber.Ctx) error {
	if origin := c.Get(fiber.HeaderOrigin); origin != "" {
		if !m.origins.AllowsRequest(origin, string(c.Request().Host())) {
			return problem.New(http.StatusForbidden, "origin-not-allowed", "Origin not allowed",
				"Origin: this page's origin is not in KILN_ALLOWED_ORIGINS")
		}
		// Kiln's policy has allowed the page (CORS headers for polling come
		// from the app's CORS middleware). Without an Origin the library
		// does not apply its own check, which allows the same origin only
		// and refuses every other page with 400.
		c.Request().Header.Del(fiber.HeaderOrigin)
	}
	if c.Query("sid") == "" { // a handshake; connected clients go on
		if m.limits.clients != nil && m.limits.clients() >= uint64(m.limits.maxClients) {
			c.Set(fiber.HeaderRetryAfter, "5")
			return problem.New(http.StatusServiceUnavailable, "too-many-connections", "Too many Socket.IO connections",
				fmt.Sprintf("SOCKETIO_MAX_CONNECTIONS: %d Socket.IO clients are connected; retry later", m.limits.maxClients))
		}
		if m.limits.handshakes != nil && !m.limits.handshakes.Allow() {
			c.Set(fiber.HeaderRetryAfter, "1")
			return problem.New(http.StatusTooManyRequests, "too-many-handshakes", "Too many Socket.IO handshakes",
				fmt.Sprintf("SOCKETIO_HANDSHAKE_RATE: more than %g new Socket.IO sessions per second; retry later", m.limits.handshakeRate))
		}
	}
	if !strings.EqualFold(c.Get(fiber.HeaderUpgrade), "websocket") {
		return m.poll(c)
	}
	head := append([]byte(nil), c.Request().Header.Header()...)
	// The raw connection, not fasthttp's hijack wrapper: the wrapper is
	// pooled and reset when the hijack handler returns, and the WebSocket
	// library may still write (and fail) on a closed connection after that.
	// The client sends nothing after its upgrade request before the 101, so
	// fasthttp's reader holds no bytes of it.
	conn := c.Context().Conn()
	c.Context().HijackSetNoResponse(true)
	c.Context().Hijack(func(net.Conn) {
		_ = conn.SetDeadline(time.Time{})
		rc := newReplayConn(conn, bufio.NewReader(io.MultiReader(bytes.NewReader(head), conn)),
			m.limits.writeTimeout, m.limits.maxFrames, m.limits.maxBytes, m.onCut)
		go rc.writeLoop()
		_ = m.server.Serve(&oneConnListener{conn: rc})
		// fasthttp closes a hijacked connection when this returns: wait
		// for the WebSocket to end.
		<-rc.closed
	})
	return nil
}

// oneConnListener accepts one connection, then reports itself closed.
type oneConnListener struct {
	mu   sync.Mutex
	conn net.Conn
}

var errListenerDone = errors.New("one-connection listener done")

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil, errListenerDone
	}
	c := l.conn
	l.conn = nil
	return c, nil
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return dummyAddr{} }

type dummyAddr struct{}

func (dummyAddr) Network() string { return "tcp" }
func (dummyAddr) String() string  { return "socket.io" }
