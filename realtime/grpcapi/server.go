// Package grpcapi is Kiln's gRPC server: orders.OrderService, compatible
// with the order system's Node clients, and kiln.v1.EventService, on their
// own HTTP/2 listener, with health, reflection, API-key auth, logging,
// metrics, panic recovery, message-size limits and deadlines.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/tap"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/realtime/feed"
	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
	ordersv1 "github.com/kilnhq/kiln/realtime/gen/orders/v1"
	"github.com/kilnhq/kiln/schemas"
)

// shutdownGrace bounds how long unary calls in flight may finish on stop.
const shutdownGrace = 10 * time.Second

// Appender stores events through ingest's path; *ingest.Service.
type Appender interface {
	Append(ctx context.Context, body []byte) ([]ingest.Outcome, error)
}

// Deps are what the server runs on.
type Deps struct {
	Ingest    Appender
	Orders    *readmodel.Orders
	JetStream jetstream.JetStream
	// Feed delivers chat messages to every ChatOrders stream; the caller
	// runs it (the Socket.IO namespaces share it).
	Feed *feed.Feed
	// ReadKeys and IngestKeys are KILN_READ_KEYS and KILN_INGEST_KEYS:
	// reads (GetOrders, Subscribe) need a read key, writes an ingest key,
	// when the set is not empty.
	ReadKeys, IngestKeys []string
	// Access resolves every credential (read and ingest keys, subscriber
	// tokens: Subscribe applies a token's claims); nil builds it from
	// ReadKeys and IngestKeys.
	Access  *httpserver.Access
	Metrics prometheus.Registerer
	Log     *slog.Logger
	// Tracer records a server span per call (Publish, CreateOrder, …),
	// parent of the append; nil is no tracing.
	Tracer trace.TracerProvider
}

// Server is the gRPC server.
type Server struct {
	cfg    Config
	deps   Deps
	grpc   *grpc.Server
	health *health.Server
	// stopping is done when the server stops, ending the open streams so
	// that the graceful stop is not held up by them (stop cancels it).
	stopping context.Context
	stop     context.CancelFunc
	// events is the whole stream, fanned out to every Subscribe; it is
	// started by the first one (eventsOnce) and runs while the server
	// serves (life).
	events     *feed.Feed
	eventsOnce sync.Once
	life       context.Context
	// catchUps bounds the Subscribe catch-ups running at once.
	catchUps chan struct{}
	// subscribes counts the Subscribe streams open (GRPC_MAX_SUBSCRIBES):
	// admit refuses one past the bound before the server gives it a
	// goroutine, Subscribe enforces it exactly.
	subscribes atomic.Int64
}

// New builds the server with both services registered.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("grpc config: %w", err)
	}
	if deps.Ingest == nil || deps.Orders == nil || deps.JetStream == nil || deps.Feed == nil || deps.Log == nil {
		return nil, errors.New("grpcapi: Ingest, Orders, JetStream, Feed and Log are required")
	}
	access := deps.Access
	if access == nil {
		access = &httpserver.Access{Read: httpserver.NewKeys(deps.ReadKeys...), Ingest: httpserver.NewKeys(deps.IngestKeys...)}
	}
	g := newGuard(access, cfg.UnaryTimeout, deps.Metrics, deps.Log.With("component", "grpc"))
	s := &Server{cfg: cfg, deps: deps, health: health.NewServer(),
		events:   feed.Of(deps.JetStream, []string{schemas.SubjectAll}, deps.Log.With("component", "grpc-subscribe-feed")),
		life:     context.Background(),
		catchUps: make(chan struct{}, cfg.MaxCatchUps)}
	s.stopping, s.stop = context.WithCancel(context.Background())
	s.grpc = grpc.NewServer(
		serverTracing(deps.Tracer),
		grpc.MaxRecvMsgSize(cfg.MaxMessageBytes),
		grpc.MaxSendMsgSize(cfg.MaxMessageBytes),
		grpc.ChainUnaryInterceptor(g.unaryInterceptor),
		grpc.ChainStreamInterceptor(g.streamInterceptor),
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		grpc.InTapHandle(func(ctx context.Context, info *tap.Info) (context.Context, error) {
			return ctx, s.admit(info.FullMethodName, g)
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second,
			MaxConnectionIdle: cfg.MaxConnectionIdle}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: cfg.KeepaliveMinTime, PermitWithoutStream: true}),
	)
	ordersv1.RegisterOrderServiceServer(s.grpc, &orderService{s: s})
	kilnv1.RegisterEventServiceServer(s.grpc, &eventService{s: s})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	for _, name := range []string{"", "orders.OrderService", "kiln.v1.EventService"} {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	return s, nil
}

// ListenAndServe serves on cfg.Addr until ctx is done.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("grpc listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then stops gracefully: health turns
// NOT_SERVING, open streams end, unary calls in flight get shutdownGrace.
// At most GRPC_MAX_CONNECTIONS connections are open at once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.life = ctx
	ln = netutil.LimitListener(ln, s.cfg.MaxConnections)
	served := make(chan error, 1)
	go func() { served <- s.grpc.Serve(ln) }()
	s.deps.Log.Info("grpc listening", "addr", ln.Addr().String())
	select {
	case err := <-served:
		return fmt.Errorf("grpc serve: %w", err)
	case <-ctx.Done():
	}
	s.health.Shutdown()
	s.stop()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		s.grpc.Stop()
	}
	<-served
	return nil
}

// liveEvents is the shared feed of the whole stream, started on first use
// and following it once this returns.
func (s *Server) liveEvents(ctx context.Context) (*feed.Feed, error) {
	s.eventsOnce.Do(func() {
		go func() { _ = s.events.Run(s.life) }()
	})
	select {
	case <-s.events.Ready():
		return s.events, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
