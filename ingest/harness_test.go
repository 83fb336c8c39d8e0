package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

type harness struct {
	app    *fiber.App
	url    string
	nats   *testsupport.NATS
	js     jetstream.JetStream
	reg    *prometheus.Registry
	svc    *ingest.Service
	config ingest.Config
}

// newHarness starts NATS and an ingest service on it; mutate adjusts the
// default config.
func newHarness(t testing.TB, mutate func(*ingest.Config)) *harness {
	t.Helper()
	return startHarness(t, testsupport.StartNATS(t), mutate, false)
}

// startHarness serves an ingest service on ns until the test ends; run
// also runs it (it follows the schema registry, as a deployed one does).
func startHarness(t testing.TB, ns *testsupport.NATS, mutate func(*ingest.Config), run bool) *harness {
	t.Helper()
	cfg, err := ingest.LoadConfig(map[string]string{"NATS_URL": ns.URL()})
	require.NoError(t, err)
	// A loaded CI machine can take longer than the 1.5 s default to ack a
	// publish; tests of the timeout itself set their own.
	cfg.PublishTimeout = 30 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	require.NoError(t, cfg.Validate())
	log := testsupport.Logger(t)
	nc, err := connect.NATS(ns.URL(), t.Name(), connect.Append, log)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	reg := prometheus.NewRegistry()
	svc, err := ingest.New(context.Background(), cfg, ingest.Deps{NATS: nc, Metrics: reg, Log: log})
	require.NoError(t, err)
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: cfg.MaxBodyBytes, Log: log})
	httpserver.RegisterHealth(app, svc.Ready)
	svc.Register(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served, ran := make(chan error, 1), make(chan error, 1)
	go func() { served <- httpserver.ServeListener(ctx, app, ln, 5*time.Second, log) }()
	if run {
		go func() { ran <- svc.Run(ctx) }()
	} else {
		ran <- nil
	}
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
		require.NoError(t, <-ran)
	})
	return &harness{app: app, url: "http://" + ln.Addr().String(), nats: ns, js: ns.JetStream(t), reg: reg, svc: svc, config: cfg}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
}

func (h *harness) post(t *testing.T, contentType, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+"/events", strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return h.do(t, req)
}

func (h *harness) do(t *testing.T, req *http.Request) response {
	t.Helper()
	r, err := h.try(t, req)
	require.NoError(t, err)
	return r
}

// doOverLimit sends a body over the limit. The server answers 413 and
// closes without reading the rest, so a client still writing may get the
// reset before the answer (TCP discards it): either is right, and ok tells
// which (on true, r is the answer).
func (h *harness) doOverLimit(t *testing.T, req *http.Request) (r response, ok bool) {
	t.Helper()
	r, err := h.try(t, req)
	if err != nil {
		require.True(t, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE), "%v", err)
		return r, false
	}
	return r, true
}

func (h *harness) try(t *testing.T, req *http.Request) (response, error) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	r := response{status: resp.StatusCode, header: resp.Header}
	if len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, &r.body), "body: %s", b)
	}
	return r, nil
}

// count returns how many messages the stream holds on a subject.
func (h *harness) count(t *testing.T, subject string) uint64 {
	t.Helper()
	s, err := h.js.Stream(context.Background(), schemas.StreamName)
	require.NoError(t, err)
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	require.NoError(t, err)
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func requireProblem(t *testing.T, r response, status int) {
	t.Helper()
	require.Equal(t, status, r.status, "body: %v", r.body)
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	require.EqualValues(t, status, r.body["status"])
	require.NotEmpty(t, r.body["title"])
	require.NotEmpty(t, r.body["type"])
}

// storedTimestamp reads the stored envelope at seq and returns its timestamp.
func (h *harness) storedTimestamp(t *testing.T, seq uint64) int64 {
	t.Helper()
	s, err := h.js.Stream(context.Background(), schemas.StreamName)
	require.NoError(t, err)
	msg, err := s.GetMsg(context.Background(), seq)
	require.NoError(t, err)
	var ev schemas.Event
	require.NoError(t, json.Unmarshal(msg.Data, &ev))
	return ev.Timestamp
}
