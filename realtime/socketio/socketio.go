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
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"golang.org/x/time/rate"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/httpserver/tokens"
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

// Appender stores events through ingest's path; *ingest.Service.
type Appender interface {
	Append(ctx context.Context, body []byte) ([]ingest.Outcome, error)
}

// Deps are what the server runs on.
type Deps struct {
	Ingest   Appender
	Feed     *feed.Feed
	ReadKeys []string
	// Access resolves the handshake's token (read, ingest and publishable
	// keys, subscriber tokens); nil builds it from ReadKeys alone. A
	// connection needs read rights (or WS_TOKEN); writing (a /chat
	// message, an order:update rebroadcast) needs write rights.
	Access *httpserver.Access
	// Origins is the browser origin policy (KILN_ALLOWED_ORIGINS): a page
	// on another origin that it does not allow is refused with 403 on the
	// handshake, polling and the WebSocket upgrade. Clients that send no
	// Origin (Node, gRPC gateways) are not browsers and are not checked;
	// the zero policy allows only pages Kiln serves itself.
	Origins httpserver.Origins
	Log     *slog.Logger
}

// Server is the Socket.IO server.
type Server struct {
	cfg    Config
	deps   Deps
	access *httpserver.Access
	io     *socket.Server
	chat   *fanout
	notes  *fanout
	mount  *mount
	// chatIn queues /chat messages for storeChat; chatBytes is the size
	// of their events (bounded by ChatQueueBytes).
	chatIn    chan chatItem
	chatBytes atomic.Int64
}

// New builds the server and its namespaces.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Ingest == nil || deps.Feed == nil || deps.Log == nil {
		return nil, errors.New("socketio: Ingest, Feed and Log are required")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("socketio: %w", err)
	}
	opts := socket.DefaultServerOptions()
	opts.SetServeClient(false)
	opts.SetPingInterval(25 * time.Second)
	opts.SetPingTimeout(20 * time.Second)
	opts.SetMaxHttpBufferSize(int64(cfg.MaxPacketBytes))
	// No permessage-deflate: broadcasts are pre-encoded frames, and
	// compressing per client is the cost the fan-out avoids.
	opts.SetPerMessageDeflate(nil)
	access := deps.Access
	if access == nil {
		access = &httpserver.Access{Read: httpserver.NewKeys(deps.ReadKeys...)}
	}
	s := &Server{cfg: cfg, deps: deps, access: access, io: socket.NewServer(nil, opts),
		chatIn: make(chan chatItem, chatQueue)}
	h := s.io.ServeHandler(opts) // starts the engine
	s.mount = newMount(h, deps.Origins, connLimits{
		writeTimeout: cfg.WriteTimeout, maxFrames: cfg.ClientBuffer, maxBytes: cfg.ClientBufferBytes,
		maxClients: cfg.MaxConnections, clients: s.io.Engine().ClientsCount,
		handshakes:    rate.NewLimiter(rate.Limit(cfg.HandshakeRate), max(1, int(math.Ceil(cfg.HandshakeRate)))),
		handshakeRate: cfg.HandshakeRate,
	}, func(err error) {
		deps.Log.Info("socket.io client cut", "err", err)
	})
	s.io.Use(s.authorize)
	chat := s.io.Of(ChatNamespace, nil)
	chat.Use(s.authorize)
	s.chat = newFanout(chat, ChatNamespace)
	_ = chat.On("connection", func(args ...any) { s.onChat(args[0].(*socket.Socket)) })
	notes := s.io.Of(NotificationsNamespace, nil)
	notes.Use(s.authorize)
	s.notes = newFanout(notes, NotificationsNamespace)
	_ = notes.On("connection", func(args ...any) { s.onNotifications(args[0].(*socket.Socket)) })
	return s, nil
}

// authorize checks the handshake token (auth.token, else ?token=) and
// keeps its rights on the socket (rightsOf). WS_TOKEN (compat) reads
// everything and writes only when writing needs no key; any other token
// is resolved by httpserver.Access, with the handshake's Origin for a
// publishable key. A connection needs read rights; with neither WS_TOKEN
// nor read credentials configured the namespaces are open to read.
func (s *Server) authorize(sock *socket.Socket, next func(*socket.ExtendedError)) {
	token := handshakeToken(sock.Handshake())
	if s.cfg.Token != "" && token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.Token)) == 1 {
		sock.SetData(httpserver.Rights{ReadAll: true, WriteAll: !s.access.WriteAuth()})
		next(nil)
		return
	}
	r, err := s.access.Resolve(token, sock.Handshake().Headers.Header().Get("Origin"))
	if s.cfg.Token != "" && !s.access.ReadAuth() && err == nil {
		r.ReadAll = false // WS_TOKEN is the only read credential
	}
	if err != nil || !r.CanRead() {
		reason := "missing or wrong token"
		if err != nil {
			reason = err.Error()
		}
		next(socket.NewExtendedError(unauthorized, map[string]any{"reason": reason}))
		return
	}
	sock.SetData(r)
	next(nil)
}

// rightsOf is what authorize resolved for sock.
func rightsOf(sock *socket.Socket) httpserver.Rights {
	r, _ := sock.Data().(httpserver.Rights)
	return r
}

// scope is the subscriber token a socket's reads are limited to, or nil.
func scope(sock *socket.Socket) *tokens.Claims {
	if r := rightsOf(sock); !r.ReadAll {
		return r.Token
	}
	return nil
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

// maxBatch bounds the feed events gathered into one broadcast.
const maxBatch = 1024

// forward broadcasts the feed's events in batches: after an event it
// gathers what else arrives within FlushInterval (or maxBatch events).
func (s *Server) forward(ctx context.Context, m *feed.Member) error {
	var timer *time.Timer
	if s.cfg.FlushInterval > 0 {
		timer = time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
	}
	var b batch
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.Done():
			return m.Err()
		case ev := <-m.C:
			b.add(*ev)
		}
		if timer != nil {
			timer.Reset(s.cfg.FlushInterval)
		gather:
			for b.n < maxBatch {
				select {
				case <-ctx.Done():
					return nil
				case ev := <-m.C:
					b.add(*ev)
				case <-timer.C:
					break gather
				}
			}
			timer.Stop()
		}
	drain: // whatever is already waiting
		for b.n < maxBatch {
			select {
			case ev := <-m.C:
				b.add(*ev)
			default:
				break drain
			}
		}
		s.flush(&b)
	}
}

// batch is the feed events of one broadcast, per namespace.
type batch struct {
	chat, notes []message
	n           int
}

func (b *batch) add(ev schemas.Event) {
	b.n++
	if msg, ok := chatMessageOf(ev); ok {
		b.chat = append(b.chat, message{event: MessageEvent, data: msg, typ: ev.EventType, user: ev.UserID})
	} else if up, ok := orderUpdateOf(ev); ok {
		b.notes = append(b.notes, message{event: OrderUpdateEvent, data: up, typ: ev.EventType, user: ev.UserID})
	}
}

func (s *Server) flush(b *batch) {
	for _, x := range []struct {
		f    *fanout
		msgs []message
	}{{s.chat, b.chat}, {s.notes, b.notes}} {
		if len(x.msgs) == 0 {
			continue
		}
		if err := x.f.send(x.msgs); err != nil {
			s.deps.Log.Warn("socket.io broadcast not encoded", "err", err)
		}
	}
	clear(b.chat)
	clear(b.notes)
	b.chat, b.notes, b.n = b.chat[:0], b.notes[:0], 0
}

// chatOut is a /chat `message` (compat shape).
type chatOut struct {
	Author    string `json:"author"`
	Text      string `json:"text"`
	CreatedAt string `json:"createdAt"`
	OrderID   string `json:"orderId,omitempty"`
}

// chatMessageOf is the /chat message of a chat.message or order.chat event.
func chatMessageOf(ev schemas.Event) (chatOut, bool) {
	if ev.EventType != chatMessage && ev.EventType != orderChat {
		return chatOut{}, false
	}
	var m struct {
		Author    string `json:"author"`
		Text      string `json:"text"`
		CreatedAt string `json:"createdAt"`
		SentAt    string `json:"sentAt"`
		OrderID   string `json:"orderId"`
	}
	if json.Unmarshal(ev.Metadata, &m) != nil {
		return chatOut{}, false
	}
	created := m.CreatedAt
	if created == "" {
		created = m.SentAt
	}
	if created == "" {
		created = time.UnixMilli(ev.Timestamp).UTC().Format(jsTime)
	}
	return chatOut{Author: m.Author, Text: m.Text, CreatedAt: created, OrderID: m.OrderID}, true
}

// orderUpdate is a /notifications `order:update` (compat shape, plus the
// event type and stream sequence).
type orderUpdate struct {
	OrderID   string `json:"orderId"`
	Status    string `json:"status"`
	EmittedAt string `json:"emittedAt"`
	Type      string `json:"type"`
	Seq       uint64 `json:"seq"`
}

// orderUpdateOf is the order:update of an order.* event with an id.
func orderUpdateOf(ev schemas.Event) (orderUpdate, bool) {
	var m struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if json.Unmarshal(ev.Metadata, &m) != nil || m.ID == "" {
		return orderUpdate{}, false
	}
	return orderUpdate{OrderID: m.ID, Status: m.Status, EmittedAt: time.Now().UTC().Format(jsTime),
		Type: ev.EventType, Seq: ev.Seq}, true
}
