package ingest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/telemetry"
	"github.com/kilnhq/kiln/telemetry/otlpsink"
	"github.com/kilnhq/kiln/testsupport"
)

// benchTraced is benchServe with the tracer provider Run would start from
// cfg: "off" (no endpoint: the no-op provider) or "on" (every request
// sampled and exported over OTLP/gRPC to an in-memory receiver that
// discards the spans).
func benchTraced(b *testing.B, on bool, body string, events int) {
	cfg := telemetry.Config{Protocol: telemetry.ProtocolGRPC, SampleRatio: 1}.Named("kiln-ingest")
	if on {
		sink, err := otlpsink.Start(otlpsink.Options{Discard: true})
		require.NoError(b, err)
		b.Cleanup(sink.Close)
		cfg.Endpoint = sink.Endpoint()
	}
	log := testsupport.Logger(b)
	tp, shutdown, err := telemetry.Start(context.Background(), cfg, log)
	require.NoError(b, err)
	b.Cleanup(func() { shutdown.Flush(log) })
	ns := testsupport.StartNATS(b)
	icfg, err := ingest.LoadConfig(map[string]string{"NATS_URL": ns.URL()})
	require.NoError(b, err)
	nc, err := connect.NATS(ns.URL(), b.Name(), connect.Append, log)
	require.NoError(b, err)
	b.Cleanup(nc.Close)
	svc, err := ingest.New(context.Background(), icfg, ingest.Deps{NATS: nc, Metrics: prometheus.NewRegistry(), Log: log, Tracer: tp})
	require.NoError(b, err)
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: icfg.MaxBodyBytes, Log: log})
	svc.Register(app)
	benchHandler(b, app.Handler(), body, events)
}

func batch100() string {
	events := make([]string, 100)
	for i := range events {
		events[i] = benchPageView(i)
	}
	return "[" + strings.Join(events, ",") + "]"
}

func BenchmarkServeBatch100TracingOff(b *testing.B) { benchTraced(b, false, batch100(), 100) }
func BenchmarkServeBatch100TracingOn(b *testing.B)  { benchTraced(b, true, batch100(), 100) }
func BenchmarkServeSingleTracingOff(b *testing.B)   { benchTraced(b, false, benchPageView(7), 1) }
func BenchmarkServeSingleTracingOn(b *testing.B)    { benchTraced(b, true, benchPageView(7), 1) }
