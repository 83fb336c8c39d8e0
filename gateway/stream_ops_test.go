package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/testsupport"
)

const slowDrops = `kiln_gateway_sse_drops_total{reason="slow_consumer"}`

// TestStreamDropsASlowClientOnly stalls one client until its buffer
// overflows while another keeps reading every event.
func TestStreamDropsASlowClientOnly(t *testing.T) {
	t.Parallel()
	g := newLiveGateway(t, liveOptions{mutate: func(c *gateway.Config) {
		c.SSE.Buffer = 32
		c.SSE.WriteTimeout = time.Minute // the stalled client must still get its reason frame
	}})
	slow := openStream(t, g.url+"/stream")
	slow.requireConnected(t)
	fast := openStream(t, g.url+"/stream")
	fast.requireConnected(t)

	// Batches of 16 KiB events, in lockstep with the fast client, until the
	// stalled client's socket and then its buffer are full.
	var got []uint64
	var last uint64
	for i := 0; promValue(g.reg, slowDrops) == 0; i++ {
		require.Less(t, i, 1000, "the stalled client was never dropped")
		batch := make([]event, 20)
		for j := range batch {
			batch[j] = event{Type: "big", User: "u1", Pad: 16 << 10}
		}
		seqs := publish(t, g.js, batch...)
		last = seqs[len(seqs)-1]
		got = append(got, fast.eventsUntil(t, last)...)
	}
	require.Equal(t, consecutive(1, last), got, "the fast client has every event")

	var before []uint64
	for {
		f, ok := slow.next(t)
		require.True(t, ok, "the stream ended without a reason frame")
		if f.event == "error" {
			require.Equal(t, map[string]any{"reason": "slow consumer: buffer of 32 frames full"}, decodeData(t, f))
			break
		}
		if f.event == "message" {
			before = append(before, f.seq(t))
		}
	}
	_, ok := slow.next(t)
	require.False(t, ok, "the reason frame is the last")
	require.NotEmpty(t, before)
	require.Equal(t, consecutive(1, before[len(before)-1]), before, "no gap up to the drop: Last-Event-ID resumes")
	require.EqualValues(t, 1, promValue(g.reg, slowDrops))
	require.Eventually(t, func() bool { return promValue(g.reg, "kiln_gateway_sse_clients") == 1 },
		5*time.Second, 10*time.Millisecond)

	more := publish(t, g.js, same(3, "after", "u1")...)
	require.Equal(t, more, fast.eventsUntil(t, more[2]))
}

func TestStreamShutdownEndsOpenStreamsPromptly(t *testing.T) {
	t.Parallel()
	g := newLiveGateway(t, liveOptions{})
	publish(t, g.js, same(20, "a", "u1")...)
	clients := make([]*sseClient, 100)
	for i := range clients {
		path := "/stream"
		if i%4 == 0 {
			path = "/stream?since=0&type=a" // resumed, then live
		}
		clients[i] = openStream(t, g.url+path)
		clients[i].requireConnected(t)
		if i%4 == 0 {
			require.Equal(t, consecutive(1, 20), clients[i].eventsUntil(t, 20))
		}
	}
	require.EqualValues(t, 100, promValue(g.reg, "kiln_gateway_sse_clients"))

	took := g.stop()
	require.Less(t, took, 2*time.Second, "shutdown with 100 open streams")
	for _, c := range clients {
		f, ok := c.next(t)
		require.True(t, ok)
		require.Equal(t, "error", f.event)
		require.Equal(t, map[string]any{"reason": "server shutting down"}, decodeData(t, f))
		_, ok = c.next(t)
		require.False(t, ok, "the stream ends")
	}
	require.EqualValues(t, 100, promValue(g.reg, `kiln_gateway_sse_drops_total{reason="shutdown"}`))
	require.EqualValues(t, 0, promValue(g.reg, "kiln_gateway_sse_clients"))
}

func TestStreamSendsSharedMetricsFrames(t *testing.T) {
	t.Parallel()
	const interval = 100 * time.Millisecond
	g := newLiveGateway(t, liveOptions{withRedis: true, mutate: func(c *gateway.Config) { c.SSE.MetricsInterval = interval }})
	read := func(c *sseClient) (nows []float64) {
		for len(nows) < 5 {
			f, ok := c.next(t)
			require.True(t, ok)
			if f.event != "metrics" {
				continue
			}
			require.Empty(t, f.id, "metrics frames do not move Last-Event-ID")
			m := decodeData(t, f)
			for _, field := range []string{"totalEventsLastMinute", "byType", "series", "totals", "asOfSeq", "now"} {
				require.Contains(t, m, field, "the GET /metrics payload")
			}
			nows = append(nows, m["now"].(float64))
		}
		return nows
	}
	a, b := openStream(t, g.url+"/stream"), openStream(t, g.url+"/stream?type=x")
	a.requireConnected(t)
	b.requireConnected(t)
	nowsA, nowsB := read(a), read(b)
	// now is when the snapshot was taken, in ms.
	took := time.Duration(nowsA[4]-nowsA[0]) * time.Millisecond
	require.GreaterOrEqual(t, took, 4*interval-40*time.Millisecond, "one frame per interval: %v", nowsA)
	require.Less(t, took, 4*interval+3*time.Second, "%v", nowsA)
	common := 0
	for _, n := range nowsB {
		for _, m := range nowsA {
			if n == m {
				common++
			}
		}
	}
	require.GreaterOrEqual(t, common, 3, "one snapshot per interval, shared by the clients: %v %v", nowsA, nowsB)
}

func TestStreamNeedsAReadKey(t *testing.T) {
	t.Parallel()
	g := newLiveGateway(t, liveOptions{mutate: func(c *gateway.Config) { c.ReadKeys = []string{"reader"} }})
	for _, tt := range []struct {
		query   string
		headers []string
	}{
		{"", nil},
		{"?access_token=nope", nil},
		{"", []string{"Authorization", "Bearer nope"}},
		{"", []string{"X-API-Key", "nope"}},
	} {
		requireProblem(t, get(t, g.url+"/stream"+tt.query, tt.headers...), 401)
	}
	for _, tt := range []struct {
		query   string
		headers []string
	}{
		{"?access_token=reader&type=a.*", nil},
		{"", []string{"Authorization", "Bearer reader"}},
		{"", []string{"X-API-Key", "reader"}},
	} {
		openStream(t, g.url+"/stream"+tt.query, tt.headers...).requireConnected(t)
	}
}

func TestStreamSurvivesANATSRestart(t *testing.T) {
	t.Parallel()
	g := newLiveGateway(t, liveOptions{})
	c := openStream(t, g.url+"/stream")
	c.requireConnected(t)
	publish(t, g.js, same(50, "a", "u1")...)
	require.Equal(t, consecutive(1, 50), c.eventsUntil(t, 50))

	g.nats.Restart(t)
	var last uint64
	require.Eventually(t, func() bool {
		seqs, err := publishEvents(g.js, same(1, "a", "u1")...)
		if err == nil {
			last = seqs[0]
		}
		return err == nil
	}, 3*time.Minute, 50*time.Millisecond, "JetStream is back")
	seqs := publish(t, g.js, same(50, "a", "u1")...)
	require.Equal(t, consecutive(51, seqs[49]), c.eventsUntil(t, seqs[49]), "no gap, no duplicate across the restart")
	require.GreaterOrEqual(t, seqs[0], last+1)
}

func TestStreamWithoutTheHubIsUnavailable(t *testing.T) {
	t.Parallel()
	svc, err := gateway.New(gateway.Config{}, deadDeps(t))
	require.NoError(t, err)
	requireProblem(t, get(t, serve(t, svc)+"/stream"), 503)

	deps := deadDeps(t)
	deps.JetStream = testsupport.StartNATS(t).JetStream(t)
	svc, err = gateway.New(gateway.Config{}, deps)
	require.NoError(t, err)
	url := serve(t, svc)
	p := requireProblem(t, get(t, url+"/stream"), 503)
	require.Equal(t, 503, p.Status, "Run was not called")
	require.NoError(t, svc.Run(canceled()))
}

// canceled is a context that is already done.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
