package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/realtime/feed"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// harness is a Socket.IO server on a free port with real NATS, ingest's
// append path and the realtime feed, as kiln run wires them.
type harness struct {
	base string // http://host:port
	js   jetstream.JetStream
	srv  *Server
	// appends are the bodies' sizes given to Append, in order.
	mu      sync.Mutex
	appends []int
	// gate, when not nil, holds every Append until it is closed.
	gate chan struct{}
}

// gatedAppender is ingest's Append, recorded and optionally held.
type gatedAppender struct {
	h   *harness
	svc *ingest.Service
}

func (a gatedAppender) Append(ctx context.Context, body []byte) ([]ingest.Outcome, error) {
	a.h.mu.Lock()
	a.h.appends = append(a.h.appends, len(body))
	gate := a.h.gate
	a.h.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return a.svc.Append(ctx, body)
}

func (a gatedAppender) MaxBatch() int { return a.svc.MaxBatch() }

// startServer starts the server with cfg (its zero fields defaulted).
func startServer(t *testing.T, cfg Config) *harness {
	t.Helper()
	return startServerEnv(t, cfg, nil)
}

// startServerEnv is startServer with ingest settings added to its own.
func startServerEnv(t *testing.T, cfg Config, ingestEnv map[string]string) *harness {
	t.Helper()
	ns := testsupport.StartNATS(t)
	log := testsupport.LoggerLevel(t, slog.LevelInfo) // clients cut are logged at info
	// A loaded machine may take longer than ingest's 1.5 s to confirm a
	// batch of chat messages; these tests are about Socket.IO, not that.
	env := map[string]string{"NATS_URL": ns.URL(), "INGEST_PUBLISH_TIMEOUT": "30s"}
	maps.Copy(env, ingestEnv)
	icfg, err := ingest.LoadConfig(env)
	require.NoError(t, err)
	nc, err := connect.NATS(ns.URL(), t.Name(), connect.Append, log)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	isvc, err := ingest.New(context.Background(), icfg, ingest.Deps{NATS: nc, Metrics: prometheus.NewRegistry(), Log: log})
	require.NoError(t, err)
	h := &harness{js: ns.JetStream(t)}
	f := feed.New(h.js, log)
	h.srv, err = New(cfg, Deps{Ingest: gatedAppender{h: h, svc: isvc}, Feed: f, Log: log})
	require.NoError(t, err)
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: 1 << 20, Log: log})
	httpserver.RegisterHealth(app, func(context.Context) error { return nil })
	h.srv.Register(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 4)
	go func() { done <- httpserver.ServeListener(ctx, app, ln, 5*time.Second, log) }()
	go func() { // follows the schema registry, as kiln run runs it
		if err := isvc.Run(ctx); !errors.Is(err, context.Canceled) {
			done <- err
			return
		}
		done <- nil
	}()
	go func() { done <- f.Run(ctx) }()
	go func() { done <- h.srv.Run(ctx) }()
	t.Cleanup(func() {
		h.release()
		cancel()
		for range 4 {
			require.NoError(t, <-done)
		}
	})
	select {
	case <-f.Ready():
	case <-time.After(2 * time.Minute):
		t.Fatal("the feed did not start")
	}
	h.base = "http://" + ln.Addr().String()
	return h
}

// hold makes every Append wait until release.
func (h *harness) hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gate = make(chan struct{})
}

func (h *harness) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gate != nil {
		close(h.gate)
		h.gate = nil
	}
}

func (h *harness) appendSizes() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int(nil), h.appends...)
}

// stored is how many events of typ the stream holds.
func (h *harness) stored(t *testing.T, typ string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := h.js.Stream(ctx, schemas.StreamName)
	require.NoError(t, err)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(schemas.Subject(typ)))
	require.NoError(t, err)
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// client is a raw Engine.IO v4 / Socket.IO v5 client over a WebSocket,
// as socket.io-client speaks it with transports: ['websocket'].
type client struct {
	t  *testing.T
	ws *websocket.Conn
}

// dialClient opens an Engine.IO session over a WebSocket.
func (h *harness) dialClient(t *testing.T) *client {
	t.Helper()
	c, err := h.tryDial(t)
	require.NoError(t, err)
	return c
}

// A handshake answered 429 (past SOCKETIO_HANDSHAKE_RATE) is retried, as
// socket.io-client retries it.
func (h *harness) tryDial(t *testing.T) (*client, error) {
	t.Helper()
	url := "ws" + strings.TrimPrefix(h.base, "http") + Path + "?EIO=4&transport=websocket"
	var ws *websocket.Conn
	for deadline := time.Now().Add(2 * time.Minute); ; {
		var resp *http.Response
		var err error
		ws, resp, err = (&websocket.Dialer{HandshakeTimeout: time.Minute}).Dial(url, nil)
		if err == nil {
			break
		}
		if resp == nil {
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			return nil, fmt.Errorf("handshake answered %d: %w", resp.StatusCode, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { _ = ws.Close() })
	c := &client{t: t, ws: ws}
	open := c.next()
	require.True(t, strings.HasPrefix(open, "0{"), "open packet: %q", open)
	return c, nil
}

// next is the next packet but pings (answered).
func (c *client) next() string {
	c.t.Helper()
	for {
		p, err := c.read()
		require.NoError(c.t, err)
		if p != "2" {
			return p
		}
	}
}

// read is the next packet but pings, or the read error (a close).
func (c *client) read() (string, error) {
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(2 * time.Minute))
		_, p, err := c.ws.ReadMessage()
		if err != nil {
			return "", err
		}
		if string(p) == "2" {
			if err := c.ws.WriteMessage(websocket.TextMessage, []byte("3")); err != nil {
				return "", err
			}
			continue
		}
		return string(p), nil
	}
}

func (c *client) send(packet string) {
	c.t.Helper()
	require.NoError(c.t, c.ws.WriteMessage(websocket.TextMessage, []byte(packet)))
}

// join connects to nsp (with token, if any) and returns the answer.
func (c *client) join(nsp, token string) string {
	c.t.Helper()
	auth := ""
	if token != "" {
		auth = fmt.Sprintf(`{"token":%q}`, token)
	}
	c.send("40" + nsp + "," + auth)
	// A broadcast on nsp may be written before the CONNECT answer while
	// others are chatting (socket.io-client buffers such events until it is
	// connected): skip them.
	for {
		got := c.next()
		if !strings.HasPrefix(got, "42"+nsp+",") {
			return got
		}
	}
}

// joined connects to nsp and requires the connection to succeed.
func (c *client) joined(nsp string) *client {
	c.t.Helper()
	got := c.join(nsp, "")
	require.True(c.t, strings.HasPrefix(got, "40"+nsp+","), "connect to %s: %q", nsp, got)
	return c
}

// emit sends event with data on nsp, asking for ack id (0: no ack).
func (c *client) emit(nsp, event string, data any, id int) {
	c.t.Helper()
	b, err := json.Marshal([]any{event, data})
	require.NoError(c.t, err)
	ack := ""
	if id > 0 {
		ack = fmt.Sprint(id)
	}
	c.send("42" + nsp + "," + ack + string(b))
}

// ack waits for the ack of id on nsp (other packets are skipped) and
// returns its first argument.
func (c *client) ack(nsp string, id int) map[string]any {
	c.t.Helper()
	prefix := fmt.Sprintf("43%s,%d", nsp, id)
	for {
		p := c.next()
		if !strings.HasPrefix(p, prefix+"[") {
			continue
		}
		var args []map[string]any
		require.NoError(c.t, json.Unmarshal([]byte(strings.TrimPrefix(p, prefix)), &args), "ack %q", p)
		require.NotEmpty(c.t, args)
		return args[0]
	}
}

// acks waits for n acks on nsp and returns their first arguments by id.
func (c *client) acks(nsp string, n int) map[int]map[string]any {
	c.t.Helper()
	got, err := c.tryAcks(nsp, n)
	require.NoError(c.t, err)
	return got
}

// tryAcks is acks for goroutines: it fails with the read error, if any,
// and the acks read until then.
func (c *client) tryAcks(nsp string, n int) (map[int]map[string]any, error) {
	got := map[int]map[string]any{}
	for len(got) < n {
		p, err := c.read()
		if err != nil {
			return got, err
		}
		rest, ok := strings.CutPrefix(p, "43"+nsp+",")
		if !ok {
			continue
		}
		i := strings.IndexByte(rest, '[')
		id, err := strconv.Atoi(rest[:max(i, 0)])
		var args []map[string]any
		if i < 1 || err != nil || json.Unmarshal([]byte(rest[i:]), &args) != nil || len(args) == 0 {
			return got, fmt.Errorf("malformed ack %q", p)
		}
		got[id] = args[0]
	}
	return got, nil
}

// event waits for the next event named name on nsp and returns its data.
func (c *client) event(nsp, name string) map[string]any {
	c.t.Helper()
	for {
		p := c.next()
		var args []json.RawMessage
		if !strings.HasPrefix(p, "42"+nsp+",") || json.Unmarshal([]byte(strings.TrimPrefix(p, "42"+nsp+",")), &args) != nil {
			continue
		}
		var ev string
		if len(args) < 2 || json.Unmarshal(args[0], &ev) != nil || ev != name {
			continue
		}
		var data map[string]any
		require.NoError(c.t, json.Unmarshal(args[1], &data))
		return data
	}
}

// pollingSession opens an Engine.IO session over long-polling and
// returns its sid.
func (h *harness) pollingSession(t *testing.T) string {
	t.Helper()
	resp, body := h.get(t, Path+"?EIO=4&transport=polling")
	for deadline := time.Now().Add(2 * time.Minute); resp.StatusCode == http.StatusTooManyRequests && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // past SOCKETIO_HANDSHAKE_RATE: retry, as a client does
		resp, body = h.get(t, Path+"?EIO=4&transport=polling")
	}
	require.Equal(t, 200, resp.StatusCode, body)
	var open struct{ Sid string }
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(body, "0")), &open), body)
	require.NotEmpty(t, open.Sid)
	return open.Sid
}

// get is a plain HTTP GET of path on the harness.
func (h *harness) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	return h.do(t, http.MethodGet, path, "")
}

func (h *harness) do(t *testing.T, method, path, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}
