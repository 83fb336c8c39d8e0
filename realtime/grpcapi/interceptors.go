package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/kilnhq/kiln/httpserver"
)

// access says which keys a method needs.
type access int

const (
	accessOpen  access = iota // health, reflection
	accessRead                // KILN_READ_KEYS
	accessWrite               // KILN_INGEST_KEYS
)

// methodAccess maps full method names to the keys they need; a method not
// listed (health, reflection) is open.
var methodAccess = map[string]access{
	"/orders.OrderService/CreateOrder": accessWrite,
	"/orders.OrderService/ChatOrders":  accessWrite,
	"/orders.OrderService/GetOrders":   accessRead,
	"/kiln.v1.EventService/Publish":    accessWrite,
	"/kiln.v1.EventService/Subscribe":  accessRead,
}

// guard holds what the interceptors share.
type guard struct {
	access  *httpserver.Access
	log     *slog.Logger
	calls   *prometheus.CounterVec
	latency *prometheus.HistogramVec
	streams *prometheus.GaugeVec
	unary   time.Duration
}

func newGuard(access *httpserver.Access, unary time.Duration, reg prometheus.Registerer, log *slog.Logger) *guard {
	g := &guard{access: access, log: log, unary: unary,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_grpc_calls_total", Help: "gRPC calls handled, by method and status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kiln_grpc_call_seconds", Help: "gRPC call duration (streams: their lifetime), by method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"method"}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kiln_grpc_streams", Help: "gRPC server streams open (Subscribe, ChatOrders clients), by method.",
		}, []string{"method"}),
	}
	for method := range methodAccess {
		if strings.HasSuffix(method, "/Subscribe") || strings.HasSuffix(method, "/ChatOrders") {
			g.streams.WithLabelValues(method) // 0 before the first client
		}
	}
	if reg != nil {
		reg.MustRegister(g.calls, g.latency, g.streams)
	}
	return g
}

// requestKey is the API key of a call: authorization: Bearer, then x-api-key.
func requestKey(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if token, ok := strings.CutPrefix(v, "Bearer "); ok {
			return strings.TrimSpace(token)
		}
	}
	if v := md.Get("x-api-key"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// authorize resolves the call's credential (httpserver.Access) and answers
// Unauthenticated unless its rights meet what the method needs: writes an
// ingest key (publishable keys are for browsers), GetOrders a read key,
// Subscribe a read key or a subscriber token, whose claims it applies.
// The rights go into the returned context (rightsOf).
func (g *guard) authorize(ctx context.Context, method string) (context.Context, error) {
	need := methodAccess[method]
	if need == accessOpen {
		return ctx, nil
	}
	key := requestKey(ctx)
	r, err := g.access.Resolve(key, "")
	var denied *httpserver.Denied
	switch {
	case errors.As(err, &denied) && denied.Status == http.StatusForbidden:
		return ctx, status.Error(codes.PermissionDenied, denied.Reason)
	case err != nil:
		return ctx, status.Error(codes.Unauthenticated, err.Error())
	}
	ok := r.WriteAll
	switch {
	case need == accessRead && method == "/kiln.v1.EventService/Subscribe":
		ok = r.CanRead()
	case need == accessRead:
		if r.Token != nil && !r.ReadAll {
			return ctx, status.Error(codes.PermissionDenied, "a subscriber token reads only its events (kiln.v1.EventService/Subscribe); this method needs a read key")
		}
		ok = r.ReadAll
	}
	switch {
	case ok:
		return context.WithValue(ctx, rightsKey{}, r), nil
	case key == "":
		return ctx, status.Error(codes.Unauthenticated, "this method needs an API key: send metadata authorization: Bearer <key> or x-api-key")
	default:
		return ctx, status.Error(codes.Unauthenticated, "the API key is not valid for this method")
	}
}

// rightsKey is the context key of a call's rights.
type rightsKey struct{}

// rightsOf returns the rights authorize put in ctx (full rights for a
// context it did not see: tests that call a handler directly).
func rightsOf(ctx context.Context) httpserver.Rights {
	if r, ok := ctx.Value(rightsKey{}).(httpserver.Rights); ok {
		return r
	}
	return httpserver.Rights{ReadAll: true, WriteAll: true}
}

// authorizedStream is a stream whose context carries its rights.
type authorizedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s authorizedStream) Context() context.Context { return s.ctx }

// done records a finished call: metrics and one log line.
func (g *guard) done(method string, start time.Time, err error) {
	code := status.Code(err)
	g.calls.WithLabelValues(method, code.String()).Inc()
	g.latency.WithLabelValues(method).Observe(time.Since(start).Seconds())
	level := slog.LevelDebug
	switch code {
	// A client's mistake or a refusal at a limit: counted in the metric,
	// not logged above debug (20,000 refused streams were 20,000 warnings).
	case codes.OK, codes.Canceled, codes.InvalidArgument, codes.Unauthenticated, codes.NotFound,
		codes.PermissionDenied, codes.ResourceExhausted, codes.OutOfRange:
	case codes.Internal, codes.Unknown, codes.DataLoss:
		level = slog.LevelError
	default:
		level = slog.LevelWarn
	}
	g.log.Log(context.Background(), level, "grpc call", "method", method, "code", code.String(),
		"duration", time.Since(start), "err", err)
}

// recovered turns a handler panic into Internal, logging its stack.
func (g *guard) recovered(method string, err *error) {
	if p := recover(); p != nil {
		g.log.Error("grpc handler panicked", "method", method, "panic", p, "stack", string(debug.Stack()))
		*err = status.Error(codes.Internal, "internal error")
	}
}

func (g *guard) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	defer func() { g.done(info.FullMethod, start, err) }()
	defer g.recovered(info.FullMethod, &err)
	ctx, err = g.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, g.unary) // keeps an earlier client deadline
	defer cancel()
	return h(ctx, req)
}

func (g *guard) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	start := time.Now()
	defer func() { g.done(info.FullMethod, start, err) }()
	defer g.recovered(info.FullMethod, &err)
	ctx, err := g.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	open := g.streams.WithLabelValues(info.FullMethod)
	open.Inc()
	defer open.Dec()
	return h(srv, authorizedStream{ServerStream: ss, ctx: ctx})
}
