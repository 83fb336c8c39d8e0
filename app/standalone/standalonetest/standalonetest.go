// Package standalonetest runs a Kiln standalone in-process for black-box
// tests of other modules (the CLI, the dashboard): real HTTP on free ports,
// real NATS, MongoDB-compatible store and Redis.
package standalonetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone"
	"github.com/kilnhq/kiln/testsupport"
)

// Instance is one running standalone.
type Instance struct {
	Base     string // http://127.0.0.1:<port>
	GRPCAddr string // 127.0.0.1:<port>, the gRPC listener
	NATSURL  string
	MongoURI string // "" when the embedded FerretDB is used
	RedisURL string
	cancel   context.CancelFunc
	done     chan error
}

// Start runs a standalone with its data in dataDir. env adds or overrides
// settings, as key, value pairs. Unless env sets MONGO_URI or REDIS_URL, the
// standalone uses a FerretDB runner process and a real redis-server from
// testsupport (faster under -race than the embedded ones).
func Start(t testing.TB, dataDir string, env ...string) *Instance {
	t.Helper()
	pinned := map[string]bool{}
	for i := 0; i+1 < len(env); i += 2 {
		pinned[env[i]] = true
	}
	var mongoURI, redisURL string
	if !pinned["MONGO_URI"] {
		mongoURI = testsupport.StartMongo(t).URI()
	}
	if !pinned["REDIS_URL"] {
		redisURL = testsupport.StartRedis(t).URL()
	}
	// A port found free can be taken by another process before the
	// standalone binds it (a shared CI machine): such a start is tried
	// again on new ports, a few times.
	for attempt := 1; ; attempt++ {
		in, err := start(t, dataDir, mongoURI, redisURL, env)
		if err == nil {
			t.Cleanup(func() { in.Stop(t) })
			return in
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("standalone did not start: %v", err)
		}
		t.Logf("standalone start %d: %v; trying other ports", attempt, err)
	}
}

// start runs one standalone and waits until it is ready, or returns the
// error it stopped with before that.
func start(t testing.TB, dataDir, mongoURI, redisURL string, env []string) (*Instance, error) {
	t.Helper()
	cfgEnv := map[string]string{
		"KILN_DATA_DIR": dataDir,
		"PORT":          strconv.Itoa(testsupport.FreePort(t)),
		"ADMIN_PORT":    strconv.Itoa(testsupport.FreePort(t)),
		"NATS_PORT":     strconv.Itoa(testsupport.FreePort(t)),
		"MONGO_PORT":    strconv.Itoa(testsupport.FreePort(t)),
		"GRPC_ADDR":     "127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t)),
		// A loaded CI machine can take longer than the 1.5 s default to
		// ack a publish; a test of the timeout sets its own.
		"INGEST_PUBLISH_TIMEOUT": "30s",
		"MONGO_URI":              mongoURI,
		"REDIS_URL":              redisURL,
	}
	for i := 0; i+1 < len(env); i += 2 {
		cfgEnv[env[i]] = env[i+1]
	}
	cfg, err := standalone.LoadConfig(cfgEnv)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	in := &Instance{
		Base:     "http://127.0.0.1:" + cfgEnv["PORT"],
		GRPCAddr: cfgEnv["GRPC_ADDR"],
		NATSURL:  "nats://127.0.0.1:" + cfgEnv["NATS_PORT"],
		MongoURI: cfgEnv["MONGO_URI"],
		RedisURL: cfgEnv["REDIS_URL"],
		cancel:   cancel,
		done:     make(chan error, 1),
	}
	go func() {
		in.done <- standalone.Run(ctx, cfg, testsupport.Logger(t))
	}()
	// Generous: a loaded CI machine starts embedded NATS, FerretDB and every
	// role slowly. The last answer says how far it got; a standalone that
	// stopped says why at once.
	last := "no answer yet"
	var exited error
	client := &http.Client{Timeout: 10 * time.Second}
	ready := assert.Eventually(t, func() bool {
		select {
		case err := <-in.done:
			exited = fmt.Errorf("it stopped before it was ready: %w", err)
			if err == nil {
				exited = errors.New("it stopped before it was ready, without an error")
			}
			return true
		default:
		}
		resp, err := client.Get(in.Base + "/readyz")
		if err != nil {
			last = err.Error()
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = resp.Status + " " + string(body)
		return resp.StatusCode == http.StatusOK
	}, 5*time.Minute, 50*time.Millisecond, "standalone never became ready")
	if exited != nil {
		cancel()
		return nil, exited
	}
	if !ready {
		cancel()
		select {
		case err := <-in.done:
			return nil, fmt.Errorf("never became ready (last /readyz: %s); stopped with %v", last, err)
		case <-time.After(20 * time.Second):
			return nil, fmt.Errorf("never became ready (last /readyz: %s), nor stopped within 20s", last)
		}
	}
	return in, nil
}

// Stop shuts the standalone down and waits for it; it is safe to call twice.
func (in *Instance) Stop(t testing.TB) {
	t.Helper()
	if in.cancel == nil {
		return
	}
	in.cancel()
	in.cancel = nil
	select {
	case err := <-in.done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("standalone did not stop within 20s")
	}
}
