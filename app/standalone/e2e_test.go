package standalone_test

import (
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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	"github.com/kilnhq/kiln/schemas"
)

// getJSON GETs base+path and decodes the answer.
func getJSON(t *testing.T, url string, into any) http.Header {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(into))
	return resp.Header
}

type storedEvent struct {
	ID        string `json:"id"`
	EventType string `json:"eventType"`
	Seq       uint64 `json:"seq"`
}

// allEvents pages through GET /events.
func allEvents(t *testing.T, base string) []storedEvent {
	t.Helper()
	var out []storedEvent
	url := base + "/events?limit=1000"
	for {
		var page []storedEvent
		h := getJSON(t, url, &page)
		out = append(out, page...)
		next := h.Get("X-Next-Cursor")
		if next == "" {
			return out
		}
		url = base + "/events?limit=1000&cursor=" + next
	}
}

type metrics struct {
	TotalEventsLastMinute int64 `json:"totalEventsLastMinute"`
	ByType                []struct {
		ID    string `json:"_id"`
		Count int64  `json:"count"`
	} `json:"byType"`
	Totals  map[string]int64 `json:"totals"`
	Total   int64            `json:"total"`
	AsOfSeq uint64           `json:"asOfSeq"`
	Series  []struct {
		ByType map[string]int64 `json:"byType"`
	} `json:"series"`
}

// postRetrying posts an NDJSON batch the way a well-behaved client does:
// a 503 or 429, or a 202 naming events that failed, is retried after its
// Retry-After with the same ids, which
// ingest's idempotency makes safe (on a loaded machine the publish can time
// out).
func postRetrying(base, body string) error {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := http.Post(base+"/events", "application/x-ndjson", strings.NewReader(body))
		if err != nil {
			return err
		}
		// A 202 may still name events JetStream did not confirm ("failed"):
		// a client retries the batch with the same ids, as for a 503.
		var answer struct {
			Failed int `json:"failed"`
		}
		derr := json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusAccepted && derr == nil && answer.Failed == 0:
			return nil
		case resp.StatusCode == http.StatusAccepted && derr != nil:
			return fmt.Errorf("202 with an unreadable body: %w", derr)
		case resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusServiceUnavailable &&
			resp.StatusCode != http.StatusTooManyRequests:
			return fmt.Errorf("status %d", resp.StatusCode)
		case time.Now().After(deadline):
			return fmt.Errorf("still status %d (%d failed) after retrying for 3 minutes", resp.StatusCode, answer.Failed)
		}
		wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		time.Sleep(time.Duration(max(wait, 1)) * time.Second)
	}
}

func TestTenThousandEventsThroughHTTPAreExactInReadModels(t *testing.T) {
	in := standalonetest.Start(t, t.TempDir(), "PROJECTOR_CHECK_INTERVAL", "100ms")
	types := []string{"page_view", "signup", "checkout", "search"}
	sent := map[string]int64{}
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(8)
	for b := range 100 {
		g.Go(func() error {
			var lines []string
			counts := map[string]int64{}
			for i := range 100 {
				typ := types[(b*100+i)%len(types)]
				counts[typ]++
				lines = append(lines, fmt.Sprintf(`{"id":"e2e-%d-%d","eventType":"%s","userId":"u%d","timestamp":%d}`,
					b, i, typ, i%10, time.Now().UnixMilli()))
			}
			if err := postRetrying(in.Base, strings.Join(lines, "\n")); err != nil {
				return fmt.Errorf("batch %d: %w", b, err)
			}
			mu.Lock()
			defer mu.Unlock()
			for typ, n := range counts {
				sent[typ] += n
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())

	requireExact := func() {
		t.Helper()
		var last metrics
		if !assert.Eventually(t, func() bool {
			last = metrics{}
			getJSON(t, in.Base+"/metrics", &last)
			return last.Total == 10_000
		}, 3*time.Minute, 100*time.Millisecond) {
			t.Fatalf("GET /metrics total never reached 10000: last %d, asOfSeq %d", last.Total, last.AsOfSeq)
		}
		var m metrics
		getJSON(t, in.Base+"/metrics", &m)
		require.Equal(t, sent, m.Totals)
		// The per-minute series (last hour) by type; the last-minute window
		// itself is covered by readmodel's tests, as a slow run can outlast
		// a minute here.
		lastHour := map[string]int64{}
		for _, pt := range m.Series {
			for typ, n := range pt.ByType {
				lastHour[typ] += n
			}
		}
		require.Equal(t, sent, lastHour, "per-minute series by type")

		require.Eventually(t, func() bool {
			return len(allEvents(t, in.Base)) == 10_000
		}, 3*time.Minute, 250*time.Millisecond)
		events := allEvents(t, in.Base)
		ids := map[string]bool{}
		byType := map[string]int64{}
		for _, ev := range events {
			require.False(t, ids[ev.ID], "event %s listed twice", ev.ID)
			ids[ev.ID] = true
			byType[ev.EventType]++
		}
		require.Equal(t, sent, byType)
	}
	requireExact()

	// The same ids again, after JetStream's dedupe window: every one is a
	// duplicate and no read model changes. The window is the default (2m)
	// while the batches are posted — a loaded machine's retries of timed-out
	// writes stay inside it — and is shortened to 1s for this check.
	waitForDedupeWindow(t, in.NATSURL)
	resp, err := http.Post(in.Base+"/events", "application/json",
		strings.NewReader(`[{"id":"e2e-0-0","eventType":"page_view","userId":"u0","timestamp":1},{"id":"e2e-99-99","eventType":"search","userId":"u9","timestamp":1}]`))
	require.NoError(t, err)
	var batch struct {
		Duplicates int `json:"duplicates"`
		Accepted   int `json:"accepted"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&batch))
	resp.Body.Close()
	require.Equal(t, 2, batch.Duplicates)
	require.Zero(t, batch.Accepted)
	requireExact()
}

// waitForDedupeWindow returns once JetStream's dedupe window has passed: a
// probe id stops being reported as a duplicate only then.
func waitForDedupeWindow(t *testing.T, url string) {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	stream, err := js.Stream(ctx, schemas.StreamName)
	require.NoError(t, err)
	cfg := stream.CachedInfo().Config
	cfg.Duplicates = time.Second
	_, err = js.UpdateStream(ctx, cfg)
	require.NoError(t, err)
	_, err = js.Publish(ctx, "events.probe", []byte(`{}`), jetstream.WithMsgID("window-probe"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		ack, err := js.Publish(ctx, "events.probe", []byte(`{}`), jetstream.WithMsgID("window-probe"))
		return err == nil && !ack.Duplicate
	}, 5*time.Minute, 50*time.Millisecond, "the probe id stayed a duplicate") // the server purges ids on a timer set from the old 2m window
}
