package standalone_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	"github.com/kilnhq/kiln/schemas"
)

func TestStandaloneServesAndKeepsAckedEventsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	// The embedded FerretDB and in-process Redis, as `make run` uses them.
	embedded := []string{"MONGO_URI", "", "REDIS_URL", ""}
	in := standalonetest.Start(t, dir, embedded...)

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(in.Base + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, path)
	}
	// The README's curl example.
	resp, err := http.Post(in.Base+"/events", "application/json",
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
				resp, err := http.Post(in.Base+"/events", "application/json", strings.NewReader(body))
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
	in.Stop(t)

	again := standalonetest.Start(t, dir, embedded...)
	require.Equal(t, acked, storedIDs(t, again.NATSURL), "every acked event survives the restart, once")
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
