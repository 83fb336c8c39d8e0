package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// liveGateway is a gateway with the live stream on a free port, fed by an
// embedded NATS; MongoDB is down (the stream does not read it) and Redis is
// down unless withRedis.
type liveGateway struct {
	url  string
	nats *testsupport.NATS
	js   jetstream.JetStream // the test's own connection, for publishing
	reg  *prometheus.Registry
	// deps are the gateway's stores (live with withRedis, withMongo).
	deps gateway.Deps
	// stop shuts the gateway down as cmd/gateway and standalone do and
	// returns how long that took.
	stop func() time.Duration
}

type liveOptions struct {
	mutate     func(*gateway.Config)
	withRedis  bool
	withMongo  bool
	withIngest bool // POST /events on the same app, as in standalone mode
	// nats is the server to use (a restarted gateway on the same stream);
	// nil starts one.
	nats *testsupport.NATS
}

func newLiveGateway(t *testing.T, o liveOptions) *liveGateway {
	t.Helper()
	ns := o.nats
	if ns == nil {
		ns = testsupport.StartNATS(t)
	}
	js := ns.JetStream(t)
	_, err := schemas.EnsureStream(context.Background(), js, schemas.StreamOptions{})
	require.NoError(t, err)

	cfg, err := gateway.LoadConfig(map[string]string{"NATS_URL": ns.URL()})
	require.NoError(t, err)
	if !o.withRedis {
		cfg.SSE.MetricsInterval = time.Hour // no snapshots of the dead Redis
	}
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	require.NoError(t, cfg.Validate())
	deps := deadDeps(t)
	if o.withRedis {
		deps.Redis = testsupport.StartRedis(t).Client(t)
	}
	if o.withMongo {
		deps.Mongo = testsupport.StartMongo(t).Database(t)
	}
	deps.JetStream = ns.JetStream(t)
	reg := prometheus.NewRegistry()
	deps.Metrics = reg
	svc, err := gateway.New(cfg, deps)
	require.NoError(t, err)

	var extra func(fiber.Router)
	if o.withIngest {
		extra = startIngest(t, ns).Register
	}
	app := newApp(t, svc, extra)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runDone, serveDone := make(chan error, 1), make(chan error, 1)
	go func() { runDone <- svc.Run(ctx) }()
	go func() { serveDone <- httpserver.ServeListener(ctx, app, ln, 5*time.Second, testsupport.Logger(t)) }()
	var once sync.Once
	var took time.Duration
	stop := func() time.Duration {
		once.Do(func() {
			start := time.Now()
			cancel()
			require.NoError(t, <-runDone)
			require.NoError(t, <-serveDone)
			took = time.Since(start)
		})
		return took
	}
	t.Cleanup(func() { stop() })
	return &liveGateway{url: "http://" + ln.Addr().String(), nats: ns, js: js, reg: reg, deps: deps, stop: stop}
}

// startIngest returns an ingest service publishing to ns.
func startIngest(t *testing.T, ns *testsupport.NATS) *ingest.Service {
	t.Helper()
	log := testsupport.Logger(t)
	icfg, err := ingest.LoadConfig(map[string]string{"NATS_URL": ns.URL()})
	require.NoError(t, err)
	nc, err := connect.NATS(ns.URL(), t.Name(), connect.Append, log)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	isvc, err := ingest.New(context.Background(), icfg, ingest.Deps{NATS: nc, Metrics: prometheus.NewRegistry(), Log: log})
	require.NoError(t, err)
	return isvc
}

// event is what the tests publish.
type event struct {
	Type, User string
	Pad        int // bytes of metadata padding
}

// publish stores events straight in the stream, as ingest does, and
// returns their sequences.
func publish(t *testing.T, js jetstream.JetStream, events ...event) []uint64 {
	t.Helper()
	seqs, err := publishEvents(js, events...)
	require.NoError(t, err)
	return seqs
}

// publishEvents is publish for goroutines other than the test's.
func publishEvents(js jetstream.JetStream, events ...event) ([]uint64, error) {
	futures := make([]jetstream.PubAckFuture, len(events))
	for i, e := range events {
		id := fmt.Sprintf("%s-%d-%d", e.Type, time.Now().UnixNano(), i)
		meta := json.RawMessage(fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", e.Pad)))
		body, err := json.Marshal(schemas.Event{ID: id, EventType: e.Type, UserID: e.User,
			Timestamp: time.Now().UnixMilli(), ReceivedAt: time.Now().UnixMilli(), Metadata: meta})
		if err != nil {
			return nil, err
		}
		msg := &nats.Msg{Subject: schemas.Subject(e.Type), Data: body, Header: nats.Header{}}
		msg.Header.Set(schemas.HeaderMsgID, id)
		msg.Header.Set(schemas.HeaderUserID, e.User)
		if futures[i], err = js.PublishMsgAsync(msg); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
	}
	seqs := make([]uint64, len(events))
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			seqs[i] = ack.Sequence
		case err := <-f.Err():
			return nil, fmt.Errorf("publish: %w", err)
		case <-time.After(10 * time.Second):
			return nil, errors.New("publish: no ack within 10s")
		}
	}
	return seqs, nil
}

// same returns n events of type typ by user.
func same(n int, typ, user string) []event {
	out := make([]event, n)
	for i := range out {
		out[i] = event{Type: typ, User: user}
	}
	return out
}

// promValue is the value of one series, e.g.
// kiln_gateway_sse_drops_total{reason="slow_consumer"}; 0 when absent and
// -1 when the registry cannot be read. It does not fail the test, so
// require.Eventually may call it.
func promValue(reg *prometheus.Registry, series string) float64 {
	families, err := reg.Gather()
	if err != nil {
		return -1
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := f.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			if name != series {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}
