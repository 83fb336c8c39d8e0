package standalone_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/standalone"
	"github.com/kilnhq/kiln/testsupport"
)

// instance is one running standalone process (in-process, on free ports).
type instance struct {
	base    string
	natsURL string
	cancel  context.CancelFunc
	done    chan error
}

func start(t *testing.T, dataDir string, extra ...string) *instance {
	t.Helper()
	env := map[string]string{
		"KILN_DATA_DIR": dataDir,
		"PORT":          strconv.Itoa(testsupport.FreePort(t)),
		"ADMIN_PORT":    strconv.Itoa(testsupport.FreePort(t)),
		"NATS_PORT":     strconv.Itoa(testsupport.FreePort(t)),
		"MONGO_PORT":    strconv.Itoa(testsupport.FreePort(t)),
		"LOG_LEVEL":     "warn",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	cfg, err := standalone.LoadConfig(env)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{
		base:    "http://127.0.0.1:" + env["PORT"],
		natsURL: "nats://127.0.0.1:" + env["NATS_PORT"],
		cancel:  cancel,
		done:    make(chan error, 1),
	}
	go func() { in.done <- standalone.Run(ctx, cfg, &testWriter{t: t}) }()
	require.Eventually(t, func() bool {
		resp, err := http.Get(in.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 60*time.Second, 50*time.Millisecond, "standalone never became ready")
	t.Cleanup(func() { in.stop(t) })
	return in
}

func (in *instance) stop(t *testing.T) {
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

func TestStandaloneServesAndKeepsAckedEventsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	in := start(t, dir)

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(in.base + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, path)
	}
	// The README's curl example.
	resp, err := http.Post(in.base+"/events", "application/json",
		strings.NewReader(`{"eventType":"page_view","userId":"u1","timestamp":1700000000}`))
	require.NoError(t, err)
	var single map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&single))
	resp.Body.Close()
	require.Equal(t, 202, resp.StatusCode)
	require.Equal(t, true, single["accepted"])

	// Concurrent clients, every acked id remembered.
	var mu sync.Mutex
	acked := map[string]bool{single["id"].(string): true}
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			for i := range 25 {
				body := fmt.Sprintf(`[{"eventType":"restart","userId":"u%d","timestamp":%d},{"eventType":"restart","userId":"u%d","timestamp":%d}]`, c, i+1, c, i+2)
				resp, err := http.Post(in.base+"/events", "application/json", strings.NewReader(body))
				if err != nil {
					continue
				}
				var batch struct {
					Results []struct {
						ID  string `json:"id"`
						Seq uint64 `json:"seq"`
					} `json:"results"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&batch)
				resp.Body.Close()
				if resp.StatusCode != 202 {
					continue
				}
				mu.Lock()
				for _, r := range batch.Results {
					if r.Seq > 0 {
						acked[r.ID] = true
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, acked, 401)
	in.stop(t)

	again := start(t, dir)
	require.Equal(t, acked, storedIDs(t, again.natsURL), "every acked event survives the restart, once")
}

// storedIDs reads every event id in the stream.
func storedIDs(t *testing.T, url string) map[string]bool {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	stream, err := js.Stream(ctx, schemas.StreamName)
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	ids := map[string]bool{}
	for range info.State.Msgs {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		require.NoError(t, err)
		var ev schemas.Event
		require.NoError(t, json.Unmarshal(msg.Data(), &ev))
		require.False(t, ids[ev.ID], "id %s stored twice", ev.ID)
		ids[ev.ID] = true
	}
	return ids
}

// testWriter sends the process log to the test log.
type testWriter struct {
	t  *testing.T
	mu sync.Mutex
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
