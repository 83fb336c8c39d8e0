// Package otlpsink is an in-memory OTLP trace receiver for tests and
// benchmarks: a real OTLP/gRPC server on a free local port that keeps every
// span it is sent.
package otlpsink

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, flattened.
type Span struct {
	Service  string
	Name     string
	TraceID  string
	SpanID   string
	ParentID string
	// Links are the span ids this span links to.
	Links []string
	Attrs map[string]string
}

// Sink receives OTLP/gRPC trace exports.
type Sink struct {
	collectortrace.UnimplementedTraceServiceServer
	srv *grpc.Server
	lis net.Listener
	// web serves OTLP/HTTP (protobuf) at /v1/traces on httpLis.
	web     *http.Server
	httpLis net.Listener
	// Discard keeps no span (for benchmarks): only the count.
	discard bool

	mu    sync.Mutex
	spans []Span
	count int
}

// Options of Start.
type Options struct {
	// Discard counts spans without keeping them.
	Discard bool
}

// Start serves OTLP/gRPC and OTLP/HTTP on 127.0.0.1, each at a free port,
// until Close.
func Start(opts Options) (*Sink, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("otlpsink: listen: %w", err)
	}
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = lis.Close()
		return nil, fmt.Errorf("otlpsink: listen: %w", err)
	}
	s := &Sink{srv: grpc.NewServer(), lis: lis, httpLis: httpLis, discard: opts.Discard}
	collectortrace.RegisterTraceServiceServer(s.srv, s)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", s.serveHTTP)
	s.web = &http.Server{Handler: mux, ReadHeaderTimeout: time.Minute}
	go func() { _ = s.srv.Serve(lis) }()
	go func() { _ = s.web.Serve(httpLis) }()
	return s, nil
}

// Endpoint is the URL to set as OTEL_EXPORTER_OTLP_ENDPOINT (protocol grpc).
func (s *Sink) Endpoint() string { return "http://" + s.lis.Addr().String() }

// HTTPEndpoint is the URL for protocol http/protobuf (without /v1/traces).
func (s *Sink) HTTPEndpoint() string { return "http://" + s.httpLis.Addr().String() }

// Close stops the servers.
func (s *Sink) Close() {
	s.srv.Stop()
	_ = s.web.Close()
}

func (s *Sink) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req collectortrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp, _ := s.Export(r.Context(), &req)
	out, _ := proto.Marshal(resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// Export implements the OTLP trace service.
func (s *Sink) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	var got []Span
	n := 0
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
			if s.discard {
				continue
			}
			for _, sp := range ss.GetSpans() {
				got = append(got, flatten(service, sp))
			}
		}
	}
	s.mu.Lock()
	s.spans = append(s.spans, got...)
	s.count += n
	s.mu.Unlock()
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func flatten(service string, sp *tracepb.Span) Span {
	out := Span{
		Service:  service,
		Name:     sp.GetName(),
		TraceID:  hex.EncodeToString(sp.GetTraceId()),
		SpanID:   hex.EncodeToString(sp.GetSpanId()),
		ParentID: hex.EncodeToString(sp.GetParentSpanId()),
		Attrs:    map[string]string{},
	}
	for _, l := range sp.GetLinks() {
		out.Links = append(out.Links, hex.EncodeToString(l.GetSpanId()))
	}
	for _, kv := range sp.GetAttributes() {
		v := kv.GetValue()
		switch {
		case v.GetStringValue() != "":
			out.Attrs[kv.GetKey()] = v.GetStringValue()
		default:
			out.Attrs[kv.GetKey()] = fmt.Sprint(v.GetIntValue())
		}
	}
	return out
}

// Spans returns a copy of the spans received so far.
func (s *Sink) Spans() []Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Span(nil), s.spans...)
}

// Count is how many spans were received.
func (s *Sink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}
