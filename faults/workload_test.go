package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
)

func getenv(k string) string { return os.Getenv(k) }

// full reports whether the whole suite runs (make test-faults).
func full() bool { return os.Getenv("KILN_FAULTS") != "" }

// onlyFull skips a fault outside make test-faults.
func onlyFull(t *testing.T) {
	if !full() {
		t.Skip("in the full fault suite only: make test-faults (KILN_FAULTS=1)")
	}
}

// eventTypes are what the workload sends, in turn.
var eventTypes = []string{"fault.a", "fault.b", "fault.c"}

// workload posts events with ids of its own to ingest, one at a time per
// writer, and retries each (same id) until ingest answers 202 — as a
// client that must not lose an event does. Acked holds the ids answered
// 202; refused those answered 400.
type workload struct {
	url    string
	client *http.Client
	next   atomic.Int64
	stop   chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	acked    map[string]string // id → event type
	refused  map[string]bool
	retries  int
	lastFail string
}

// startWorkload runs writers, each posting an event every pause.
func startWorkload(t *testing.T, url string, writers int, pause time.Duration) *workload {
	w := &workload{url: url, client: &http.Client{Timeout: 10 * time.Second}, stop: make(chan struct{}),
		acked: map[string]string{}, refused: map[string]bool{}}
	for range writers {
		w.wg.Go(func() {
			for {
				select {
				case <-w.stop:
					return
				case <-time.After(pause):
				}
				n := w.next.Add(1)
				w.post(fmt.Sprintf("ev-%06d", n), eventTypes[n%int64(len(eventTypes))], time.Now().UnixMilli())
			}
		})
	}
	t.Cleanup(w.finish)
	return w
}

// post sends one event until it is answered 202 or 400 (given up after 5
// minutes, which fails the count checks).
func (w *workload) post(id, typ string, ts int64) {
	body, _ := json.Marshal(map[string]any{"id": id, "eventType": typ, "userId": "u1", "timestamp": ts,
		"metadata": map[string]any{"n": id}})
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := w.client.Post(w.url+"/events", "application/json", bytes.NewReader(body))
		status := 0
		if err == nil {
			status = resp.StatusCode
			_ = resp.Body.Close()
		}
		switch status {
		case http.StatusAccepted:
			w.mu.Lock()
			w.acked[id] = typ
			w.mu.Unlock()
			return
		case http.StatusBadRequest:
			w.mu.Lock()
			w.refused[id] = true
			w.mu.Unlock()
			return
		}
		w.mu.Lock()
		w.retries++
		w.lastFail = fmt.Sprint(status, err)
		w.mu.Unlock()
		time.Sleep(100 * time.Millisecond) // a client's retry pause, not synchronisation
	}
}

// finish stops the writers after their event in flight is answered.
func (w *workload) finish() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

func (w *workload) ackedIDs() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]string, len(w.acked))
	for k, v := range w.acked {
		out[k] = v
	}
	return out
}

func (w *workload) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// observed is what each read model holds.
type observed struct {
	history, counters, recent int
}

// settle waits until every read model holds exactly the acked events —
// history (MongoDB) the acked ids and nothing else, the counters (Redis)
// their number in all and per type, the recent-history cache (when usable)
// the acked ids — and returns what it saw and how long that took.
func (p *pipeline) settle(t *testing.T, acked map[string]string, within time.Duration) (observed, time.Duration) {
	t.Helper()
	start := time.Now()
	ctx := context.Background()
	history := readmodel.FollowHistory(p.db)
	counters := readmodel.FollowCounters(p.rdb, readmodel.CountersOptions{})
	byType := map[string]int64{}
	for _, typ := range acked {
		byType[typ]++
	}
	var seen observed
	var why string
	ok := assertEventually(within, func() bool {
		n, err := history.Count(ctx)
		if err != nil {
			why = "history count: " + err.Error()
			return false
		}
		seen.history = int(n)
		m, err := counters.Snapshot(ctx, time.Now())
		if err != nil {
			why = "counters: " + err.Error()
			return false
		}
		seen.counters = int(m.Total)
		if seen.history != len(acked) || seen.counters != len(acked) {
			why = fmt.Sprintf("history %d, counters %d, acked %d", seen.history, seen.counters, len(acked))
			return false
		}
		for typ, want := range byType {
			if m.Totals[typ] != want {
				why = fmt.Sprintf("counters[%s] = %d, acked %d", typ, m.Totals[typ], want)
				return false
			}
		}
		return true
	})
	recovery := time.Since(start)
	require.True(t, ok, "read models never matched the acked events within %s: %s", within, why)

	// The counts match: now the ids, once.
	ids, err := historyIDs(ctx, history)
	require.NoError(t, err)
	require.Len(t, ids, len(acked), "history")
	for id := range acked {
		require.True(t, ids[id], "acked event %s missing from the history", id)
	}
	// The recent cache answers only once it is complete again (rebuilt
	// after a crash or an empty Redis): wait a while for it, else report
	// it as not usable (-1); the gateway reads MongoDB meanwhile.
	seen.recent = -1
	recent := readmodel.FollowRecent(p.rdb, readmodel.RecentOptions{})
	var rids map[string]bool
	var reason string
	if assertEventually(time.Minute, func() bool {
		var usable bool
		var err error
		rids, usable, reason, err = recentIDs(ctx, recent)
		return err == nil && usable && len(rids) == len(acked)
	}) {
		seen.recent = len(rids)
		for id := range rids {
			require.Contains(t, acked, id, "the recent cache holds an event never acked")
		}
	} else {
		t.Logf("recent cache not usable or not equal after a minute (%d ids; %s)", len(rids), reason)
	}
	if poison, ok := promSum("http://"+p.projAdmin+"/metrics", "kiln_projector_poison_total"); ok {
		require.Zero(t, poison, "no healthy event was terminated as poison")
	}
	return seen, recovery
}

// assertEventually polls cond every 250 ms until it holds or within passed.
func assertEventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond) // polling interval, as require.Eventually's tick
	}
}

// historyIDs pages through the whole history.
func historyIDs(ctx context.Context, h *readmodel.History) (map[string]bool, error) {
	ids := map[string]bool{}
	var after *readmodel.Cursor
	for {
		events, next, err := h.Find(ctx, readmodel.Query{Limit: 1000, After: after})
		if err != nil {
			return nil, err
		}
		for _, ev := range events {
			if ids[ev.ID] {
				return nil, fmt.Errorf("event %s twice in the history", ev.ID)
			}
			ids[ev.ID] = true
		}
		if next == nil {
			return ids, nil
		}
		after = next
	}
}

// recentIDs pages through the recent cache; usable is false when the cache
// says it cannot answer (not rebuilt yet, behind MongoDB).
func recentIDs(ctx context.Context, r *readmodel.Recent) (map[string]bool, bool, string, error) {
	ids := map[string]bool{}
	var after *readmodel.Cursor
	for {
		page, ok, reason, err := r.Find(ctx, readmodel.Query{Limit: 1000, After: after})
		if err != nil || !ok {
			return nil, false, reason, err
		}
		var events []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(page.Body, &events); err != nil {
			return nil, false, "", err
		}
		for _, ev := range events {
			ids[ev.ID] = true
		}
		if page.Next == nil {
			return ids, true, "", nil
		}
		after = page.Next
	}
}
