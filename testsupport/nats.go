package testsupport

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsReadyTimeout bounds how long StartNATS and Restart wait for the
// embedded server to accept connections.
const natsReadyTimeout = 10 * time.Second

// NATS is an embedded nats-server with JetStream enabled, listening on
// 127.0.0.1. It is shut down when the test that started it finishes.
type NATS struct {
	mu       sync.Mutex
	srv      *server.Server
	port     int
	storeDir string
}

// NATSOption customises StartNATS.
type NATSOption func(*natsConfig)

type natsConfig struct {
	storeDir string
}

// WithStoreDir makes the JetStream store live in dir instead of a fresh
// t.TempDir(). Use it to start a second server on the same data.
func WithStoreDir(dir string) NATSOption {
	return func(c *natsConfig) { c.storeDir = dir }
}

// StartNATS starts an embedded nats-server with JetStream on a free port of
// 127.0.0.1 and registers its shutdown with t.Cleanup.
func StartNATS(t testing.TB, opts ...NATSOption) *NATS {
	t.Helper()

	cfg := natsConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.storeDir == "" {
		cfg.storeDir = t.TempDir()
	}

	n := &NATS{storeDir: cfg.storeDir}
	n.srv = startNATSServer(t, -1, n.storeDir)
	n.port = n.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(n.Shutdown)
	return n
}

// startNATSServer starts one server process-locally and waits until it is
// ready for connections.
func startNATSServer(t testing.TB, port int, storeDir string) *server.Server {
	t.Helper()

	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  storeDir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("testsupport: creating nats-server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(natsReadyTimeout) {
		s.Shutdown()
		s.WaitForShutdown()
		t.Fatalf("testsupport: nats-server on port %d not ready after %s", port, natsReadyTimeout)
	}
	return s
}

// URL returns the client URL, e.g. nats://127.0.0.1:4222. It stays the same
// across Restart.
func (n *NATS) URL() string {
	n.mu.Lock()
	defer n.mu.Unlock()

	return n.srv.ClientURL()
}

// Server returns the currently running embedded server (a new one after
// Restart).
func (n *NATS) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()

	return n.srv
}

// StoreDir returns the JetStream store directory.
func (n *NATS) StoreDir() string {
	return n.storeDir
}

// Connect opens a client connection that is closed when the test finishes.
// The connection reconnects forever (every 50ms), so it survives Restart.
func (n *NATS) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()

	all := append([]nats.Option{
		nats.Name(t.Name()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50 * time.Millisecond),
	}, opts...)
	nc, err := nats.Connect(n.URL(), all...)
	if err != nil {
		t.Fatalf("testsupport: connecting to nats-server: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context over a fresh connection from Connect.
func (n *NATS) JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()

	js, err := jetstream.New(n.Connect(t))
	if err != nil {
		t.Fatalf("testsupport: creating JetStream context: %v", err)
	}
	return js
}

// Shutdown stops the server and waits until it has stopped. It is
// idempotent and safe to call concurrently; use it for fault tests.
func (n *NATS) Shutdown() {
	n.mu.Lock()
	defer n.mu.Unlock()

	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// Restart stops the server if it is running and starts a fresh one on the
// same port with the same store directory, so JetStream data survives.
func (n *NATS) Restart(t testing.TB) {
	t.Helper()

	n.mu.Lock()
	defer n.mu.Unlock()

	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = startNATSServer(t, n.port, n.storeDir)
}
