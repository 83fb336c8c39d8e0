package schemas_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
)

// retries counts the WARN records a Setup logs.
type retries struct {
	slog.Handler
	n *atomic.Int64
}

func (h retries) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		h.n.Add(1)
	}
	return nil
}

func (h retries) Enabled(context.Context, slog.Level) bool { return true }

func (h retries) WithAttrs([]slog.Attr) slog.Handler { return h }

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startServer(t *testing.T, o *server.Options) *server.Server {
	t.Helper()
	o.Host, o.JetStream, o.StoreDir, o.NoLog, o.NoSigs = "127.0.0.1", true, t.TempDir(), true, true
	s, err := server.NewServer(o)
	require.NoError(t, err)
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	require.True(t, s.ReadyForConnections(time.Minute), "nats-server ready")
	return s
}

func connect(t *testing.T, port int) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port),
		nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

// Issue 25 item 3: a role started before NATS answers keeps trying (and
// says so) instead of exiting on its first timeout.
func TestSetUpStreamWaitsForTheServer(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	js := connect(t, port) // nothing listens yet
	var warned atomic.Int64
	log := slog.New(retries{slog.DiscardHandler, &warned})
	done := make(chan error, 1)
	go func() {
		_, err := schemas.SetUpStream(context.Background(), js, schemas.StreamOptions{}, log)
		done <- err
	}()
	require.Eventually(t, func() bool { return warned.Load() > 0 }, 3*time.Minute, 10*time.Millisecond,
		"a failed attempt is logged")
	startServer(t, &server.Options{Port: port})
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(3 * time.Minute):
		t.Fatal("SetUpStream did not return 3 minutes after the server started")
	}
	s, err := js.Stream(context.Background(), schemas.StreamName)
	require.NoError(t, err)
	require.Equal(t, schemas.SubjectAll, s.CachedInfo().Config.Subjects[0])
}

// A configuration JetStream refuses is reported at once, not retried.
func TestSetUpStreamDoesNotRetryARefusal(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	startServer(t, &server.Options{Port: port})
	js := connect(t, port)
	// a stream of another name already holds the subjects: overlap, 400
	_, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "OTHER", Subjects: []string{schemas.SubjectAll}})
	require.NoError(t, err)
	var warned atomic.Int64
	_, err = schemas.SetUpStream(context.Background(), js, schemas.StreamOptions{}, slog.New(retries{slog.DiscardHandler, &warned}))
	require.Error(t, err)
	require.Contains(t, err.Error(), "set up EVENTS")
	require.Zero(t, warned.Load())
}

// Two instances creating the R3 stream at once, on a cluster whose servers
// have only just started (no JetStream leader yet), both succeed.
func TestTwoInstancesCreateTheR3StreamWhileTheClusterForms(t *testing.T) {
	t.Parallel()
	var ports, routes [3]int
	for i := range 3 {
		ports[i], routes[i] = freePort(t), freePort(t)
	}
	var urls []*url.URL
	for _, p := range routes {
		urls = append(urls, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	for i := range 3 {
		startServer(t, &server.Options{
			ServerName: fmt.Sprintf("n%d", i), Port: ports[i], Routes: urls,
			Cluster: server.ClusterOpts{Name: "kiln", Host: "127.0.0.1", Port: routes[i]},
		})
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	var warned atomic.Int64
	log := slog.New(retries{slog.DiscardHandler, &warned})
	for i := range 2 {
		js := connect(t, ports[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = schemas.SetUpStream(context.Background(), js, schemas.StreamOptions{Replicas: 3}, log)
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	t.Logf("retries logged: %d", warned.Load())
	js := connect(t, ports[2])
	require.Eventually(t, func() bool {
		s, err := js.Stream(context.Background(), schemas.StreamName)
		return err == nil && s.CachedInfo().Config.Replicas == 3
	}, 3*time.Minute, 50*time.Millisecond)
}
