package faults

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/kilnhq/kiln/testsupport"
)

// pipeline is the split deployment under test: embedded NATS, FerretDB
// behind a proxy the test can cut, a redis-server the test can kill and
// restart empty on the same port, and ingest and the projector as
// processes.
type pipeline struct {
	t          *testing.T
	nats       *testsupport.NATS
	mongoProxy *testsupport.Proxy
	db         *mongo.Database // direct, not through the proxy: for checking
	redisAddr  string
	redis      *proc
	rdb        redis.UniversalClient
	ingest     *proc
	ingestURL  string
	projector  *proc
	projAdmin  string
}

func startPipeline(t *testing.T, extraIngestEnv map[string]string) *pipeline {
	t.Helper()
	p := &pipeline{t: t, nats: testsupport.StartNATS(t)}
	m := testsupport.StartMongo(t)
	p.db = m.Database(t)
	p.mongoProxy = testsupport.StartProxy(t, strings.TrimSuffix(strings.TrimPrefix(m.URI(), "mongodb://"), "/"))

	redisBin, err := exec.LookPath("redis-server")
	require.NoError(t, err, "redis-server on PATH")
	port := testsupport.FreePort(t)
	p.redisAddr = "127.0.0.1:" + strconv.Itoa(port)
	p.redis = newCommand(t, "redis", redisBin, []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir()}, nil)
	p.rdb = redis.NewClient(&redis.Options{Addr: p.redisAddr, MaxRetries: -1})
	t.Cleanup(func() { _ = p.rdb.Close() })
	p.startRedis()

	ingestEnv := map[string]string{
		"NATS_URL": p.nats.URL(), "INGEST_ADDR": free(t), "INGEST_ADMIN_ADDR": free(t), "LOG_LEVEL": "warn",
	}
	for k, v := range extraIngestEnv {
		ingestEnv[k] = v
	}
	p.ingestURL = "http://" + ingestEnv["INGEST_ADDR"]
	p.ingest = newProc(t, "ingest", ingestEnv)
	p.startIngest()

	p.projAdmin = free(t)
	p.projector = newProc(t, "projector", map[string]string{
		"NATS_URL": p.nats.URL(), "MONGO_URI": "mongodb://" + p.mongoProxy.Addr() + "/", "MONGO_DATABASE": p.db.Name(),
		"REDIS_URL": "redis://" + p.redisAddr + "/0", "PROJECTOR_ADMIN_ADDR": p.projAdmin, "LOG_LEVEL": "warn",
	})
	p.startProjector()
	return p
}

// free is a free 127.0.0.1 address.
func free(t *testing.T) string { return "127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t)) }

// startRedis (re)starts redis-server, empty, and waits for it.
func (p *pipeline) startRedis() {
	p.t.Helper()
	p.redis.start()
	require.Eventually(p.t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return p.rdb.Ping(ctx).Err() == nil
	}, time.Minute, 20*time.Millisecond, "redis-server never answered")
}

func (p *pipeline) startIngest() {
	p.t.Helper()
	p.ingest.start()
	waitReady(p.t, p.ingestURL+"/readyz")
}

func (p *pipeline) startProjector() {
	p.t.Helper()
	p.projector.start()
	waitReady(p.t, "http://"+p.projAdmin+"/healthz")
}

// waitReady waits for url to answer 200.
func waitReady(t *testing.T, url string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	require.Eventually(t, func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 2*time.Minute, 50*time.Millisecond, "%s never answered 200", url)
}

// outage is how long a fault keeps a dependency away: KILN_FAULT_OUTAGE,
// else 60 s in the full suite and 3 s in the fast subset.
func outage(t *testing.T) time.Duration {
	if v := getenv("KILN_FAULT_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "KILN_FAULT_OUTAGE")
		return d
	}
	if full() {
		return 60 * time.Second
	}
	return 3 * time.Second
}

// report prints one fault's figures as a JSON line (make test-faults
// collects them) and logs them.
func report(t *testing.T, fault string, acked int, seen observed, recovery time.Duration) {
	line := fmt.Sprintf(`{"fault":%q,"acked":%d,"history":%d,"counters":%d,"recent":%d,"recovery_s":%.1f}`,
		fault, acked, seen.history, seen.counters, seen.recent, recovery.Seconds())
	fmt.Println(line)
	t.Log(line)
}
