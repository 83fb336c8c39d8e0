package webhooks_test

import (
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/webhooks"
	"github.com/kilnhq/kiln/webhooks/delivery"
)

// TestDeadEndpointBacklogDoesNotDelayOthers: jobs of an endpoint that
// fails every request wait for their next attempt; a healthy endpoint
// still gets a new event at once. The latency is logged, not asserted (CI
// machines are loaded). The backlog is 2,000 jobs (8 times what the
// workers' consumer may hold pending), or KILN_TEST_WEBHOOK_BACKLOG
// (10000 for the acceptance figure in the README: each first attempt is
// logged in FerretDB, which takes minutes under -race).
func TestDeadEndpointBacklogDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	backlog := 2_000
	if v := os.Getenv("KILN_TEST_WEBHOOK_BACKLOG"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "KILN_TEST_WEBHOOK_BACKLOG")
		backlog = n
	}
	h := newHarness(t, func(c *webhooks.Config) {
		c.Schedule = []time.Duration{time.Hour}
		c.Concurrency, c.PerEndpoint = 64, 64
	})
	dead, healthy := newReceiver(t), newReceiver(t)
	dead.respond = func(int, received) int { return http.StatusServiceUnavailable }
	epDead, epHealthy := h.createEndpoint(dead.URL, "order.*"), h.createEndpoint(healthy.URL, "page_view")
	dead.trust(epDead.Secret)
	healthy.trust(epHealthy.Secret)

	for i := range backlog {
		_, err := h.js.PublishMsgAsync(h.event("order.created", `"i":`+strconv.Itoa(i)))
		require.NoError(t, err)
		if i%500 == 499 { // the async window is shared with the dispatcher
			select {
			case <-h.js.PublishAsyncComplete():
			case <-t.Context().Done():
			}
		}
	}
	// Every job has had its first attempt and waits an hour for the next.
	cons, err := h.js.Consumer(t.Context(), delivery.Stream, delivery.WorkerDurable)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && len(dead.accepted()) == 0 && distinct(dead.all()) == backlog &&
			info.NumAckPending == 0 && info.NumPending == 0
	}, max(5*time.Minute, time.Duration(backlog)*100*time.Millisecond), 100*time.Millisecond, "all %d jobs attempted once and waiting", backlog)
	st, err := h.js.Stream(t.Context(), delivery.Stream)
	require.NoError(t, err)
	info, err := st.Info(t.Context())
	require.NoError(t, err)
	require.EqualValues(t, backlog, info.State.Msgs, "the waiting jobs are scheduled in the stream")
	// Attempts so far: one per job, or a few more where a loaded machine let
	// an ack wait pass while the attempt was being logged (at least once).
	attempts := len(dead.all())

	start := time.Now()
	h.publish("page_view")
	require.Eventually(t, func() bool { return len(healthy.accepted()) == 1 }, wait, time.Millisecond)
	t.Logf("with %d jobs waiting for a dead endpoint, a healthy endpoint received a new event %s after it was published",
		backlog, healthy.all()[0].At.Sub(start))
	require.Len(t, dead.all(), attempts, "no job of the dead endpoint was tried again before its time")
}

// TestDeletedEndpointJobsAreRecordedNotRetried: a job waiting for its
// next attempt when its endpoint is deleted is recorded as dead when due,
// and not sent.
func TestDeletedEndpointJobsAreRecordedNotRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *webhooks.Config) { c.Schedule = []time.Duration{2 * time.Second, 2 * time.Second} })
	rc := newReceiver(t)
	rc.respond = func(int, received) int { return http.StatusInternalServerError }
	ep := h.createEndpoint(rc.URL)
	rc.trust(ep.Secret)
	h.publish("order.created")
	require.Eventually(t, func() bool { return len(rc.all()) == 1 }, wait, tick)
	id := rc.all()[0].ID
	require.Equal(t, http.StatusNoContent, h.api(http.MethodDelete, "/webhook-endpoints/"+ep.ID, nil, nil))
	var d map[string]any
	require.Eventually(t, func() bool {
		clear(d)
		return h.api(http.MethodGet, "/webhook-deliveries/"+id, nil, &d) == http.StatusOK && d["status"] == "dead"
	}, wait, tick)
	require.Equal(t, "endpoint deleted", d["reason"])
	require.Len(t, rc.all(), 1, "nothing sent after the endpoint was deleted")
}

func distinct(rs []received) int {
	ids := map[string]bool{}
	for _, r := range rs {
		ids[r.ID] = true
	}
	return len(ids)
}

// TestSlowEndpointBurstDoesNotDelayOthers: many more jobs for an endpoint
// that never answers than the workers' consumer may hold pending (4 ×
// concurrency); a healthy endpoint's events still go out at once.
func TestSlowEndpointBurstDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	release := make(chan struct{})
	var arrived atomic.Int64
	slow := newReceiver(t)
	slow.Server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		slow.serve(w, r)
	})
	t.Cleanup(func() { close(release) })
	healthy := newReceiver(t)
	epSlow, epHealthy := h.createEndpoint(slow.URL, "order.*"), h.createEndpoint(healthy.URL, "page_view")
	slow.trust(epSlow.Secret)
	healthy.trust(epHealthy.Secret)
	for i := range 500 {
		_, err := h.js.PublishMsgAsync(h.event("order.created", `"i":`+strconv.Itoa(i)))
		require.NoError(t, err)
	}
	select {
	case <-h.js.PublishAsyncComplete():
	case <-t.Context().Done():
	}
	require.Eventually(t, func() bool { return arrived.Load() >= int64(h.cfg.PerEndpoint) }, wait, tick, "the slow endpoint is saturated")
	for range 5 {
		h.publish("page_view")
	}
	require.Eventually(t, func() bool { return len(healthy.accepted()) == 5 }, wait, tick)
}
