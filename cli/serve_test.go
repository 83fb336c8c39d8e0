package cli_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/kilnhq/kiln/cli/internal/command"
	"github.com/kilnhq/kiln/testsupport"
)

// serving is a `kiln serve <role>` running in the test.
type serving struct {
	admin, http string
	log         *testsupport.LogBuffer
	stop        func() error
	exited      func() (bool, error)
}

func startRole(t *testing.T, role string, env map[string]string) *serving {
	t.Helper()
	s := &serving{log: &testsupport.LogBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- command.Execute(ctx, []string{"serve", role},
			command.IO{In: strings.NewReader(""), Out: io.Discard, Err: s.log, Env: env, Version: "test"})
	}()
	var once sync.Once
	var err error
	wait := func(timeout time.Duration) {
		select {
		case err = <-done:
		case <-time.After(timeout):
			err = context.DeadlineExceeded
		}
	}
	s.stop = func() error {
		once.Do(func() { cancel(); wait(2 * time.Minute) })
		return err
	}
	// exited reports whether the role stopped by itself, and its error.
	s.exited = func() (bool, error) {
		select {
		case e := <-done:
			once.Do(func() { err = e })
			return true, err
		default:
			return false, nil
		}
	}
	t.Cleanup(func() { _ = s.stop() })
	return s
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func addr(t *testing.T) string { return "127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t)) }

// TestServeWebhooksAndRealtimeRoles: the two roles that lived only inside
// the standalone run alone against shared stores, with their admin
// listeners, and stop gracefully.
//
// Not parallel: it runs before the package's standalones load the machine.
func TestServeWebhooksAndRealtimeRoles(t *testing.T) {
	ns := testsupport.StartNATS(t)
	mongo := testsupport.StartMongo(t)
	stores := func(kv ...string) map[string]string {
		env := map[string]string{"NATS_URL": ns.URL(), "MONGO_URI": mongo.URI(), "MONGO_DATABASE": testsupport.UniqueName(t),
			"LOG_LEVEL": "debug"} // a role that does not get ready says how far it got
		for i := 0; i+1 < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	wh := &serving{http: addr(t), admin: addr(t)}
	whRun := startRole(t, "webhooks", stores("WEBHOOKS_ADDR", wh.http, "WEBHOOKS_ADMIN_ADDR", wh.admin))
	rt := &serving{http: addr(t), admin: addr(t)}
	grpcAddr := addr(t)
	rtRun := startRole(t, "realtime", stores("REALTIME_ADDR", rt.http, "REALTIME_ADMIN_ADDR", rt.admin,
		"GRPC_ADDR", grpcAddr, "ADMIN_PPROF", "true"))

	for _, s := range []struct {
		name, admin string
		run         *serving
	}{{"webhooks", wh.admin, whRun}, {"realtime", rt.admin, rtRun}} {
		var exitErr error
		require.Eventually(t, func() bool {
			if gone, err := s.run.exited(); gone {
				exitErr = fmt.Errorf("exited: %v", err)
				return true
			}
			code, _ := get("http://" + s.admin + "/readyz")
			return code == http.StatusOK
		}, 5*time.Minute, 100*time.Millisecond, "%s never became ready; log:\n%s", s.name, s.run.log.String())
		require.NoError(t, exitErr, "%s stopped before it was ready; log:\n%s", s.name, s.run.log.String())
		code, body := get("http://" + s.admin + "/readyz/" + s.name)
		require.Equal(t, http.StatusOK, code, body)
		code, body = get("http://" + s.admin + "/metrics")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "go_goroutines")
		require.Contains(t, s.run.log.String(), `"service":"`+s.name+`"`, "JSON logs name the role")
		for line := range strings.Lines(s.run.log.String()) {
			require.LessOrEqual(t, strings.Count(line, `"service":`), 1, "a record names its service once: %s", line)
		}
	}

	// webhooks: the endpoints' admin API on its public port.
	code, body := get("http://" + wh.http + "/webhook-endpoints")
	require.Equal(t, http.StatusOK, code, body)
	// pprof only where ADMIN_PPROF=true.
	code, _ = get("http://" + wh.admin + "/debug/pprof/")
	require.Equal(t, http.StatusNotFound, code)
	code, body = get("http://" + rt.admin + "/debug/pprof/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "goroutine")

	// realtime: Socket.IO's handshake on its HTTP port, gRPC on GRPC_ADDR.
	code, body = get("http://" + rt.http + "/socket.io/?EIO=4&transport=polling")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"sid"`)
	cc, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hr, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, hr.GetStatus())

	require.NoError(t, whRun.stop(), whRun.log.String())
	require.NoError(t, rtRun.stop(), rtRun.log.String())
}
