package projector

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/kilnhq/kiln/projector/internal/consume"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// testEnv is one set of real servers: NATS with the EVENTS stream, FerretDB,
// redis-server.
type testEnv struct {
	js    jetstream.JetStream
	db    *mongo.Database
	redis redis.UniversalClient
	cfg   Config
	sent  map[string]int // events published, by type
	// the servers, for tests that put a proxy in front of them
	mongoSrv *testsupport.Mongo
	redisSrv *testsupport.Redis
	seq      int
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	_, err := schemas.EnsureStream(context.Background(), js, schemas.StreamOptions{})
	require.NoError(t, err)
	cfg, err := LoadConfig(map[string]string{
		"PROJECTOR_ACK_WAIT": "1s", "PROJECTOR_BATCH_SIZE": "200", "PROJECTOR_CHECK_INTERVAL": "50ms",
		"PROJECTOR_POISON_AFTER": "2",
	})
	require.NoError(t, err)
	m, r := testsupport.StartMongo(t), testsupport.StartRedis(t)
	return &testEnv{
		js: js, db: m.Database(t), redis: r.Client(t), mongoSrv: m, redisSrv: r,
		cfg: cfg, sent: map[string]int{},
	}
}

var eventTypes = []string{"page_view", "signup", "order.created", "payment.failed"}

// publish appends n events straight to the stream, timestamped now.
func (e *testEnv) publish(t testing.TB, n int) {
	t.Helper()
	now := time.Now().UnixMilli()
	e.publishStamped(t, n, func(int) (int64, int64) { return now, now })
}

// publishStamped publishes n events and waits for their acks; stamp gives
// the i-th its timestamp and receivedAt.
func (e *testEnv) publishStamped(t testing.TB, n int, stamp func(i int) (timestamp, receivedAt int64)) {
	t.Helper()
	require.NoError(t, e.tryPublishStamped(n, stamp))
}

// tryPublish is publish returning its error (for a goroutine other than
// the test's).
func (e *testEnv) tryPublish(n int) error {
	now := time.Now().UnixMilli()
	return e.tryPublishStamped(n, func(int) (int64, int64) { return now, now })
}

func (e *testEnv) tryPublishStamped(n int, stamp func(i int) (timestamp, receivedAt int64)) error {
	futures := make([]jetstream.PubAckFuture, 0, n)
	for i := range n {
		e.seq++
		ts, received := stamp(i)
		ev := schemas.Event{
			ID: fmt.Sprintf("ev-%06d", e.seq), EventType: eventTypes[e.seq%len(eventTypes)],
			UserID: fmt.Sprintf("u%d", e.seq%7), Timestamp: ts, ReceivedAt: received,
			Metadata: json.RawMessage(`{"n":1}`),
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		msg := nats.NewMsg(schemas.Subject(ev.EventType))
		msg.Data = data
		msg.Header.Set(schemas.HeaderMsgID, ev.ID)
		f, err := e.js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("publish %s: %w", ev.ID, err)
		}
		futures = append(futures, f)
		e.sent[ev.EventType]++
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish %s: %w", f.Msg().Header.Get(schemas.HeaderMsgID), err)
		}
	}
	return nil
}

func (e *testEnv) total() int {
	n := 0
	for _, c := range e.sent {
		n += c
	}
	return n
}

// start runs a projector until the test ends or stop is called.
func (e *testEnv) start(t testing.TB, wrap func(string, consume.Projection) consume.Projection) (stop func()) {
	t.Helper()
	_, stop = e.startWith(t, Deps{
		JetStream: e.js, Mongo: e.db, Redis: e.redis, Metrics: prometheus.NewRegistry(), Log: testsupport.Logger(t),
	}, wrap)
	return stop
}

// startWith runs a projector on deps until the test ends or stop is called.
func (e *testEnv) startWith(t testing.TB, deps Deps, wrap func(string, consume.Projection) consume.Projection) (svc *Service, stop func()) {
	t.Helper()
	svc, err := New(context.Background(), e.cfg, deps)
	require.NoError(t, err)
	svc.wrap = wrap
	return svc, testsupport.Run(t, context.Background(), svc.Run)
}

// requireExact waits until both read models hold exactly what was sent.
func (e *testEnv) requireExact(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	history := readmodel.NewHistory(e.db, readmodel.DefaultCollections())
	counters := readmodel.NewCounters(e.redis, readmodel.CountersOptions{})
	want := map[string]int64{}
	for typ, n := range e.sent {
		want[typ] = int64(n)
	}
	// Generous: under -race on a loaded 2-core machine the FerretDB history
	// can take minutes; the last state seen is in the failure message.
	// The condition runs in a goroutine of its own that may outlive a
	// timed-out Eventually: what it saw is shared under a lock.
	var mu sync.Mutex
	var seen string
	ok := assert.Eventually(t, func() bool {
		n, err := history.Count(ctx)
		s := fmt.Sprintf("history %d (err %v)", n, err)
		done := err == nil && n == int64(e.total())
		if done {
			m, err := counters.Snapshot(ctx, time.Now())
			s += fmt.Sprintf(", counters %d (err %v)", m.Total, err)
			done = err == nil && m.Total == int64(e.total())
		}
		mu.Lock()
		seen = s
		mu.Unlock()
		return done
	}, 5*time.Minute, 50*time.Millisecond)
	mu.Lock()
	last := seen
	mu.Unlock()
	require.True(t, ok, "read models never reached %d events; last seen: %s", e.total(), last)

	requireCountsByType(t, counters, want)
	for typ, n := range want {
		page, _, err := history.Find(ctx, readmodel.Query{Types: []string{typ}, Limit: 100_000})
		require.NoError(t, err)
		require.Len(t, page, int(n), "history of %s", typ)
	}
}

// requireCountsByType: the counters hold want by type, in all and in the
// per-minute series of the last hour. The last-minute window (ByType) is
// checked by readmodel's own tests, since a slow run can outlast a minute
// here.
func requireCountsByType(t *testing.T, counters *readmodel.Counters, want map[string]int64) {
	t.Helper()
	m, err := counters.Snapshot(context.Background(), time.Now())
	require.NoError(t, err)
	require.Equal(t, want, m.Totals, "counters by type")
	lastHour := map[string]int64{}
	for _, pt := range m.Series {
		for typ, n := range pt.ByType {
			lastHour[typ] += n
		}
	}
	require.Equal(t, want, lastHour, "per-minute series by type")
}
