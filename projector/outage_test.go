package projector

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/projector/status"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/testsupport"
)

// warnCounter counts WARN records on their way to the test log.
type warnCounter struct {
	slog.Handler
	n *atomic.Int64
}

func (h warnCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h warnCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return warnCounter{h.Handler.WithAttrs(as), h.n}
}

// Issue 13 item 1: a store outage that outlasts every delivery attempt the
// consumer allows (MaxDeliver 3, AckWait 1s, poison after 2 deliveries —
// the old loop terminated healthy events within seconds) ends with exact
// read models, nothing recorded as poison, the outage visible in the
// metrics and readiness while it lasts, and few log lines.
func TestStoreOutageIsRetriedNeverPoison(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.cfg.MaxDeliver = 3
	e.cfg.PoisonAfter = 2
	redisLink := testsupport.StartProxy(t, e.redisSrv.Addr())
	mongoLink := testsupport.StartProxy(t, strings.TrimSuffix(strings.TrimPrefix(e.mongoSrv.URI(), "mongodb://"), "/"))
	rdb := redis.NewClient(&redis.Options{Addr: redisLink.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	mc, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + mongoLink.Addr() + "/").
		SetServerSelectionTimeout(2 * time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	var warns atomic.Int64
	reg := prometheus.NewRegistry()
	svc, _ := e.startWith(t, Deps{
		JetStream: e.js, Mongo: mc.Database(e.db.Name()), Redis: rdb, Metrics: reg,
		Log: slog.New(warnCounter{testsupport.Logger(t).Handler(), &warns}),
	}, nil)
	e.publish(t, 300)
	e.requireExact(t)

	redisLink.Cut()
	e.publish(t, 500)
	require.Eventually(t, func() bool {
		err := svc.Ready(context.Background())
		return err != nil && strings.Contains(err.Error(), "counters waits for redis")
	}, 3*time.Minute, 20*time.Millisecond, "readiness names the stalled projection and its store")
	mongoLink.Cut()
	e.publish(t, 200)
	require.Eventually(t, func() bool {
		err := svc.Ready(context.Background())
		return err != nil && strings.Contains(err.Error(), "history waits for mongodb")
	}, 3*time.Minute, 20*time.Millisecond)
	require.EqualValues(t, 1, testutil.ToFloat64(stalledGauge(t, reg, Counters)))
	require.Eventually(t, func() bool { // what `kiln projections` shows
		return reported(t, e, Counters, true) && reported(t, e, History, true)
	}, 3*time.Minute, 50*time.Millisecond, "the status bucket reports both stalled")
	// Many AckWaits pass: the old loop would have terminated every event.
	// (This wait is the outage being tested, not a synchronisation.)
	time.Sleep(15 * time.Second)
	mongoLink.Restore()
	time.Sleep(5 * time.Second)
	redisLink.Restore()

	e.requireExact(t)
	require.Eventually(t, func() bool { return svc.Ready(context.Background()) == nil },
		60*time.Second, 50*time.Millisecond, "ready again once the stores answer")
	require.Eventually(t, func() bool { return reported(t, e, Counters, false) && reported(t, e, History, false) },
		30*time.Second, 50*time.Millisecond, "the status bucket reports both resumed")
	errs, err := readmodel.NewLedger(e.db).Errors(context.Background(), 10)
	require.NoError(t, err)
	require.Empty(t, errs, "a store error is never poison")
	require.EqualValues(t, 0, testutil.ToFloat64(stalledGauge(t, reg, Counters)))
	t.Logf("%d WARN lines during the outage", warns.Load())
	require.Less(t, warns.Load(), int64(40), "an outage logs a few lines, not one per event (1,000 events)")
}

// reported says whether the status bucket holds a report on projection
// with the given stalled state, naming its store.
func reported(t *testing.T, e *testEnv, projection string, stalled bool) bool {
	reports, err := status.List(context.Background(), e.js)
	if err != nil {
		return false
	}
	for _, r := range reports {
		if r.Projection == projection && r.Stalled == stalled && r.Dependency == dependencyOf(projection) {
			return true
		}
	}
	return false
}

func stalledGauge(t *testing.T, reg *prometheus.Registry, projection string) prometheus.Collector {
	t.Helper()
	return gaugeFrom{reg: reg, name: "kiln_projector_stalled", projection: projection}
}

// gaugeFrom reads one labelled gauge out of a registry, for testutil.
type gaugeFrom struct {
	reg        *prometheus.Registry
	name       string
	projection string
}

func (g gaugeFrom) Describe(chan<- *prometheus.Desc) {}

func (g gaugeFrom) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != g.name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "projection" && l.GetValue() == g.projection {
					ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(g.name, "", nil, nil),
						prometheus.GaugeValue, m.GetGauge().GetValue())
				}
			}
		}
	}
}
