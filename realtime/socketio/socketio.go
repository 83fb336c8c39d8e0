// Package socketio is Kiln's Socket.IO v4 server (the order system's
// /chat and /notifications namespaces, for socket.io-client 4.x), mounted
// on the gateway's Fiber port under /socket.io/. What it pushes comes from
// the stream through the process's realtime feed, so every message is a
// stored event and a restart or a second gateway loses nothing stored.
package socketio

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/realtime/feed"
	"github.com/kilnhq/kiln/schemas"
)

// Namespaces and events of the contract (CONTRACT.md section 6).
const (
	ChatNamespace          = "/chat"
	NotificationsNamespace = "/notifications"
	MessageEvent           = "message"
	OrderUpdateEvent       = "order:update"
	// chatMessage is the type of the events /chat messages are stored as.
	chatMessage = "chat.message"
	orderChat   = "order.chat"
	// unauthorized is the connect_error message of a refused token (compat).
	unauthorized = "Unauthorized"
	// jsTime is how JavaScript's Date.toISOString writes a time.
	jsTime = "2006-01-02T15:04:05.000Z07:00"
)

// Config configures the Socket.IO server.
type Config struct {
	// Token is the old server's shared token (compat); clients may also
	// present a read key. With neither configured the namespaces are open.
	Token string `env:"WS_TOKEN"`
	// Buffer is how many feed events the server may have pending before
	// it is cut from the feed (and rejoins, logging the loss).
	Buffer int `env:"SOCKETIO_BUFFER" envDefault:"8192"`
	// WriteTimeout disconnects a WebSocket client that accepts no data for
	// this long, so a stuck client's queued packets cannot grow forever.
	WriteTimeout time.Duration `env:"SOCKETIO_WRITE_TIMEOUT" envDefault:"10s"`
}

// Appender stores events through ingest's path; *ingest.Service.
type Appender interface {
	Append(ctx context.Context, body []byte) ([]ingest.Outcome, error)
}

// Deps are what the server runs on.
type Deps struct {
	Ingest   Appender
	Feed     *feed.Feed
	ReadKeys []string
	Log      *slog.Logger
}

// Server is the Socket.IO server.
type Server struct {
	cfg   Config
	deps  Deps
	keys  httpserver.Keys
	io    *socket.Server
	chat  socket.Namespace
	notes socket.Namespace
	mount *mount
	// chatIn queues /chat messages for storeChat.
	chatIn chan chatItem
}

// New builds the server and its namespaces.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Ingest == nil || deps.Feed == nil || deps.Log == nil {
		return nil, errors.New("socketio: Ingest, Feed and Log are required")
	}
	if cfg.Buffer < 1 {
		cfg.Buffer = 8192
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	opts := socket.DefaultServerOptions()
	opts.SetServeClient(false)
	opts.SetPingInterval(25 * time.Second)
	opts.SetPingTimeout(20 * time.Second)
	opts.SetMaxHttpBufferSize(1 << 20)
	s := &Server{cfg: cfg, deps: deps, keys: httpserver.NewKeys(deps.ReadKeys...), io: socket.NewServer(nil, opts),
		chatIn: make(chan chatItem, chatQueue)}
	s.mount = newMount(s.io.ServeHandler(opts), cfg.WriteTimeout)
	s.io.Use(s.authorize)
	s.chat = s.io.Of(ChatNamespace, nil)
	s.chat.Use(s.authorize)
	s.chat.On("connection", func(args ...any) { s.onChat(args[0].(*socket.Socket)) })
	s.notes = s.io.Of(NotificationsNamespace, nil)
	s.notes.Use(s.authorize)
	s.notes.On("connection", func(args ...any) { s.onNotifications(args[0].(*socket.Socket)) })
	return s, nil
}

// authorize checks the handshake token (auth.token, else ?token=).
func (s *Server) authorize(sock *socket.Socket, next func(*socket.ExtendedError)) {
	if s.cfg.Token == "" && !s.keys.Enabled() {
		next(nil)
		return
	}
	token := handshakeToken(sock.Handshake())
	ok := token != "" && (s.keys.Allows(token) ||
		(s.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.Token)) == 1))
	if !ok {
		next(socket.NewExtendedError(unauthorized, nil))
		return
	}
	next(nil)
}

func handshakeToken(h *socket.Handshake) string {
	if t, ok := h.Auth["token"].(string); ok && t != "" {
		return t
	}
	switch q := h.Query["token"].(type) {
	case string:
		return q
	case []string:
		if len(q) > 0 {
			return q[0]
		}
	}
	return ""
}

// Run forwards the feed's chat and order events to the namespaces until
// ctx is done, then disconnects every client.
func (s *Server) Run(ctx context.Context) error {
	defer s.io.Close(nil)
	stored := make(chan struct{})
	go func() {
		defer close(stored)
		s.storeChat(ctx)
	}()
	defer func() { <-stored }()
	for {
		m := s.deps.Feed.Join(s.cfg.Buffer)
		err := s.forward(ctx, m)
		m.Leave()
		if ctx.Err() != nil {
			return nil
		}
		s.deps.Log.Warn("socket.io fell behind the feed; events in between were not pushed", "err", err)
	}
}

func (s *Server) forward(ctx context.Context, m *feed.Member) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.Done():
			return m.Err()
		case ev := <-m.C:
			s.push(ev)
		}
	}
}

// push emits one stored event to the namespace it belongs to.
func (s *Server) push(ev schemas.Event) {
	switch ev.EventType {
	case chatMessage, orderChat:
		var m struct {
			Author    string `json:"author"`
			Text      string `json:"text"`
			CreatedAt string `json:"createdAt"`
			SentAt    string `json:"sentAt"`
			OrderID   string `json:"orderId"`
		}
		if json.Unmarshal(ev.Metadata, &m) != nil {
			return
		}
		created := m.CreatedAt
		if created == "" {
			created = m.SentAt
		}
		if created == "" {
			created = time.UnixMilli(ev.Timestamp).UTC().Format(jsTime)
		}
		msg := map[string]any{"author": m.Author, "text": m.Text, "createdAt": created}
		if m.OrderID != "" {
			msg["orderId"] = m.OrderID
		}
		_ = s.chat.Emit(MessageEvent, msg)
	default:
		var m struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		if json.Unmarshal(ev.Metadata, &m) != nil || m.ID == "" {
			return
		}
		_ = s.notes.Emit(OrderUpdateEvent, map[string]any{
			"orderId": m.ID, "status": m.Status, "emittedAt": time.Now().UTC().Format(jsTime),
			"type": ev.EventType, "seq": ev.Seq,
		})
	}
}
