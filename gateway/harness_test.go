package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// harness is a gateway on a free port over a real FerretDB and redis-server.
type harness struct {
	url      string
	admin    string // the admin listener (Prometheus /metrics)
	history  *readmodel.History
	counters *readmodel.Counters
	recent   *readmodel.Recent
	reg      *prometheus.Registry
}

// newHarness starts MongoDB, Redis and a gateway on them; mutate adjusts the
// default config.
func newHarness(t *testing.T, mutate func(*gateway.Config)) *harness {
	t.Helper()
	cfg, err := gateway.LoadConfig(map[string]string{})
	require.NoError(t, err)
	if mutate != nil {
		mutate(&cfg)
	}
	require.NoError(t, cfg.Validate())
	db := testsupport.StartMongo(t).Database(t)
	rdb := testsupport.StartRedis(t).Client(t)
	reg := prometheus.NewRegistry()
	svc, err := gateway.New(cfg, gateway.Deps{Mongo: db, Redis: rdb, Metrics: reg, Log: testsupport.Logger(t)})
	require.NoError(t, err)
	history := readmodel.NewHistory(db, readmodel.DefaultCollections())
	require.NoError(t, history.EnsureIndexes(context.Background()))
	return &harness{
		url:      serve(t, svc),
		admin:    serveApp(t, httpserver.NewAdminApp(reg, svc.Ready, testsupport.Logger(t))),
		history:  history,
		counters: readmodel.NewCounters(rdb, readmodel.CountersOptions{}),
		recent:   readmodel.NewRecent(rdb, readmodel.RecentOptions{MaxEvents: 30}),
		reg:      reg,
	}
}

// serve mounts svc on a Kiln app and serves it until the test ends.
func serve(t *testing.T, svc *gateway.Service) string {
	t.Helper()
	return serveApp(t, newApp(t, svc, nil))
}

// newApp mounts svc (and extra, e.g. ingest) on a Kiln app with the health
// routes, as standalone mode does.
func newApp(t *testing.T, svc *gateway.Service, extra func(fiber.Router)) *fiber.App {
	t.Helper()
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: 64 * 1024, Log: testsupport.Logger(t)})
	httpserver.RegisterHealth(app, svc.Ready)
	if extra != nil {
		extra(app)
	}
	svc.Register(app)
	return app
}

// serveApp serves app on a free port until the test ends.
func serveApp(t *testing.T, app *fiber.App) string {
	t.Helper()
	log := testsupport.Logger(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpserver.ServeListener(ctx, app, ln, 5*time.Second, log) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return "http://" + ln.Addr().String()
}

// deadDeps are stores that do not answer: a MongoDB and a Redis on ports
// nobody listens on. Routes that never touch them still work.
func deadDeps(t *testing.T) gateway.Deps {
	t.Helper()
	mc, err := mongo.Connect(options.Client().
		ApplyURI(fmt.Sprintf("mongodb://127.0.0.1:%d", testsupport.FreePort(t))).
		SetServerSelectionTimeout(300 * time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t)), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	return gateway.Deps{Mongo: mc.Database("kiln"), Redis: rdb, Log: testsupport.Logger(t)}
}

// fixture returns n events of types a, b, c (in turn) by users u0 and u1,
// two per timestamp (so order ties are broken by seq), one second apart
// from base.
func fixture(n int, base int64) []schemas.Event {
	out := make([]schemas.Event, n)
	for i := range out {
		out[i] = schemas.Event{
			ID: fmt.Sprintf("e%03d", i), EventType: []string{"a", "b", "c"}[i%3], UserID: fmt.Sprintf("u%d", i%2),
			Timestamp: base + int64(i/2)*1000, ReceivedAt: base, Seq: uint64(i + 1),
			Metadata: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
		}
	}
	return out
}

// newestFirst returns the ids of the events that match, in the API's order.
func newestFirst(events []schemas.Event, match func(schemas.Event) bool) []string {
	var sel []schemas.Event
	for _, ev := range events {
		if match(ev) {
			sel = append(sel, ev)
		}
	}
	slices.SortFunc(sel, func(a, b schemas.Event) int {
		if a.Timestamp != b.Timestamp {
			return int(b.Timestamp - a.Timestamp)
		}
		return int(b.Seq) - int(a.Seq)
	})
	ids := make([]string, len(sel))
	for i, ev := range sel {
		ids[i] = ev.ID
	}
	return ids
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// get requests url with headers given as name, value pairs.
func get(t *testing.T, url string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// decode unmarshals the body into a value of type T.
func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(r.body, &v), "body: %s", r.body)
	return v
}

// problemBody is the part of a problem document the tests check.
type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// requireProblem checks r is a problem+json of status and returns it.
func requireProblem(t *testing.T, r response, status int) problemBody {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	p := decode[problemBody](t, r)
	require.Equal(t, status, p.Status)
	require.NotEmpty(t, p.Title)
	require.NotEmpty(t, p.Type)
	return p
}

// httpClient is a client that gives up quickly, for polling.
func httpClient() *http.Client {
	return &http.Client{Timeout: 2 * time.Second}
}
