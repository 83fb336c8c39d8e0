package standalone_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone"
	"github.com/kilnhq/kiln/testsupport"
)

// runStandalone runs a standalone without REDIS_URL and returns its log,
// its data folder and a stop function.
func runStandalone(t *testing.T, mongoURI string) (log *testsupport.LogBuffer, dir string, stop func()) {
	t.Helper()
	dir = t.TempDir()
	port := strconv.Itoa(testsupport.FreePort(t))
	cfg, err := standalone.LoadConfig(map[string]string{
		"KILN_DATA_DIR": dir, "PORT": port, "ADMIN_PORT": strconv.Itoa(testsupport.FreePort(t)),
		"NATS_PORT": strconv.Itoa(testsupport.FreePort(t)), "MONGO_URI": mongoURI,
		"GRPC_ADDR":     "127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t)),
		"KILN_SERVICES": "ingest,projector,gateway",
	})
	require.NoError(t, err)
	log = &testsupport.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- standalone.Run(ctx, cfg, slog.New(slog.NewTextHandler(log, nil))) }()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://127.0.0.1:" + port + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 3*time.Minute, 50*time.Millisecond, "standalone never became ready: %s", log)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return log, dir, stop
}

func TestStandaloneStartsRedisServerFromPATHAndWritesDiscovery(t *testing.T) {
	t.Parallel()
	log, dir, stop := runStandalone(t, testsupport.StartMongo(t).URI())
	require.Contains(t, log.String(), "redis: started a redis-server child")
	b, err := os.ReadFile(filepath.Join(dir, standalone.DiscoveryFile))
	require.NoError(t, err)
	var d struct {
		NATSURL, MongoURI, RedisURL string
	}
	require.NoError(t, json.Unmarshal(b, &d))
	require.NotEmpty(t, d.NATSURL)
	require.NotEmpty(t, d.MongoURI)
	opts, err := redis.ParseURL(d.RedisURL)
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	info, err := rdb.Info(context.Background(), "server").Result()
	require.NoError(t, err)
	require.Contains(t, info, "redis_version", "a real redis-server answers")
	require.Contains(t, info, "executable:", "miniredis has no executable field")
	require.DirExists(t, filepath.Join(dir, "redis"), "its files are under the data folder")
	stop()
	require.NoFileExists(t, filepath.Join(dir, standalone.DiscoveryFile), "removed on shutdown")
}

// Not parallel: it changes PATH.
func TestStandaloneFallsBackToInProcessRedis(t *testing.T) {
	mongoURI := testsupport.StartMongo(t).URI()
	t.Setenv("PATH", t.TempDir()) // no redis-server
	log, _, _ := runStandalone(t, mongoURI)
	require.Contains(t, log.String(), `level=WARN msg="redis: in-process miniredis, a test fake`, "said loudly, with its cost")
	require.Contains(t, log.String(), "~26 req/s")
	require.Contains(t, log.String(), "no redis-server on PATH")
}

// Not parallel: it changes PATH. A redis-server that fails says why in the
// log (it used to be "exited at start: " and nothing).
func TestStandaloneLogsWhyRedisServerDidNotStart(t *testing.T) {
	mongoURI := testsupport.StartMongo(t).URI()
	bin := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, "redis-server"),
		[]byte("#!/bin/sh\necho '*** FATAL CONFIG FILE ERROR: a reason only its output says' >&2\nexit 1\n"), 0o755))
	t.Setenv("PATH", bin)
	log, _, _ := runStandalone(t, mongoURI)
	require.Contains(t, log.String(), `level=ERROR msg="redis: redis-server did not start"`)
	require.Contains(t, log.String(), "a reason only its output says")
	require.Contains(t, log.String(), `level=WARN msg="redis: in-process miniredis`)
}
