package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/httpserver/tokens"
	"github.com/kilnhq/kiln/readmodel"
)

// tokenSecret signs the test's subscriber tokens.
const tokenSecret = "snapshot-test-secret-0123456789abcdef"

// snapshotWait bounds how long a test waits for a snapshot frame (other
// frames keep coming meanwhile).
const snapshotWait = 2 * time.Minute

// snapshotOf reads frames until the next compat snapshot frame and returns
// its data, checking the frame's shape: unnamed (for onmessage) and
// without id (Last-Event-ID stays the last event's).
func (c *sseClient) snapshotOf(t *testing.T) map[string]any {
	t.Helper()
	deadline := time.Now().Add(snapshotWait)
	for {
		require.True(t, time.Now().Before(deadline), "no snapshot frame within %s", snapshotWait)
		f, ok := c.next(t)
		require.True(t, ok, "the stream ended")
		if !f.isSnapshot() {
			continue
		}
		require.Empty(t, f.id, "a snapshot frame does not move Last-Event-ID")
		require.Empty(t, f.event, "a snapshot frame is unnamed: EventSource.onmessage gets it")
		return decodeData(t, f)
	}
}

// recentIDs are the ids of a snapshot's recent events, in order.
func recentIDs(t *testing.T, snap map[string]any) []string {
	t.Helper()
	var ids []string
	for _, ev := range snap["recent"].([]any) {
		ids = append(ids, ev.(map[string]any)["id"].(string))
	}
	return ids
}

// noSnapshotWithin reads n metrics or heartbeat frames (one per interval)
// and fails on a snapshot frame among the frames before them.
func (c *sseClient) noSnapshotWithin(t *testing.T, n int, why string) {
	t.Helper()
	for seen := 0; seen < n; {
		f, ok := c.next(t)
		require.True(t, ok, "the stream ended")
		require.False(t, f.isSnapshot(), "%s: got %s", why, f.data)
		if f.event == "metrics" || f.comment != "" {
			seen++
		}
	}
}

// TestStreamSendsTheCompatSnapshotFrame: the pre-Kiln dashboard's live
// panel renders only onmessage data with total or connected; the old
// stream sent {timestamp,total,recent} every 3 s. Unfiltered streams get
// it, computed once per interval for all clients and sent only when the
// total or the newest events changed; filtered streams do not.
func TestStreamSendsTheCompatSnapshotFrame(t *testing.T) {
	t.Parallel()
	g := newLiveGateway(t, liveOptions{withRedis: true, withMongo: true,
		mutate: func(c *gateway.Config) {
			c.SSE.MetricsInterval, c.SSE.Heartbeat = 100*time.Millisecond, 100*time.Millisecond
			c.Tokens.Secrets, c.ReadKeys = []string{tokenSecret}, []string{"reader"}
		}})
	ctx := context.Background()
	history := readmodel.NewHistory(g.deps.Mongo, readmodel.DefaultCollections())
	require.NoError(t, history.EnsureIndexes(ctx))
	counters := readmodel.NewCounters(g.deps.Redis, readmodel.CountersOptions{})
	evs := fixture(8, baseMs)
	apply := func(from, to int) {
		t.Helper()
		_, err := history.Apply(ctx, evs[from:to])
		require.NoError(t, err)
		_, err = counters.Apply(ctx, evs[from:to], time.Now())
		require.NoError(t, err)
	}
	apply(0, 3)

	all := openStreamKeeping(t, true, g.url+"/stream?access_token=reader")
	typed := openStreamKeeping(t, true, g.url+"/stream?type=a&access_token=reader")
	user := openStreamKeeping(t, true, g.url+"/stream?userId=u0&access_token=reader")
	for _, c := range []*sseClient{all, typed, user} {
		c.requireConnected(t)
	}
	snap := all.snapshotOf(t)
	require.EqualValues(t, 3, snap["total"])
	require.Equal(t, []string{"e002", "e001", "e000"}, recentIDs(t, snap), "the newest stored events, newest first")
	at, err := time.Parse(time.RFC3339Nano, snap["timestamp"].(string))
	require.NoError(t, err, "timestamp is an ISO date")
	require.WithinDuration(t, time.Now(), at, time.Minute)

	all.noSnapshotWithin(t, 5, "nothing changed")

	apply(3, 8)
	snap = all.snapshotOf(t)
	if snap["total"].(float64) < 8 { // the total and the newest events were read between the writes
		snap = all.snapshotOf(t)
	}
	require.EqualValues(t, 8, snap["total"])
	require.Equal(t, []string{"e007", "e006", "e005", "e004", "e003"}, recentIDs(t, snap), "the 5 newest")

	late := openStreamKeeping(t, true, g.url+"/stream?access_token=reader")
	late.requireConnected(t)
	f, ok := late.next(t)
	require.True(t, ok)
	require.True(t, f.isSnapshot(), "a new client gets the latest snapshot right after connected: %+v", f)
	require.EqualValues(t, 8, decodeData(t, f)["total"])

	typed.noSnapshotWithin(t, 5, "a stream filtered by type gets no snapshot frame")
	user.noSnapshotWithin(t, 5, "a stream filtered by user gets no snapshot frame")

	// A subscriber token's stream asks for no filter, but the token limits
	// it: the total and newest events of every user are not for it.
	keys, err := tokens.NewKeyring(tokens.Config{Secrets: []string{tokenSecret}})
	require.NoError(t, err)
	token, err := keys.Sign(tokens.Mint{Types: []string{"a"}, TTL: time.Hour}, time.Now())
	require.NoError(t, err)
	scoped := openStreamKeeping(t, true, g.url+"/stream?access_token="+token)
	scoped.requireConnected(t)
	scoped.noSnapshotWithin(t, 10, "a subscriber token's stream gets no snapshot frame")
	require.GreaterOrEqual(t, promValue(g.reg, `kiln_gateway_sse_frames_total{kind="snapshot"}`), 3.0)
}
