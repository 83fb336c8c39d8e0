package gateway_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// resumer is an SSE client that reconnects with Last-Event-ID whenever its
// stream ends, to whatever gateway url() names, and records every event
// sequence it gets.
type resumer struct {
	start uint64 // the position of its first connection
	mu    sync.Mutex
	seqs  []uint64
	// resumes counts connections after the first that reached the stream.
	resumes atomic.Int32
}

func (r *resumer) last() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seqs) == 0 {
		return r.start
	}
	return r.seqs[len(r.seqs)-1]
}

func (r *resumer) run(ctx context.Context, client *http.Client, url func() string) {
	for first := true; ctx.Err() == nil; {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url()+"/stream", nil)
		if err != nil {
			return
		}
		req.Header.Set("Last-Event-ID", strconv.FormatUint(r.last(), 10))
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			if err == nil {
				_ = resp.Body.Close()
			}
			select { // the gateway is down: retry as EventSource does
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if !first {
			r.resumes.Add(1)
		}
		first = false
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			id, ok := strings.CutPrefix(sc.Text(), "id: ")
			if !ok {
				continue
			}
			seq, err := strconv.ParseUint(id, 10, 64)
			if err == nil {
				r.mu.Lock()
				r.seqs = append(r.seqs, seq)
				r.mu.Unlock()
			}
		}
		_ = resp.Body.Close()
	}
}

// A gateway restart with 500 resuming clients: every client ends with every
// event once, in order, and the new gateway's JetStream API requests do not
// grow with the clients (they resume from the hub's recent events, asking
// the stream's bounds once for all).
func TestGatewayRestartWith500ResumingClients(t *testing.T) {
	t.Parallel()
	const clients, before, during, after = 500, 100, 50, 50
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	_, err := schemas.EnsureStream(context.Background(), js, schemas.StreamOptions{})
	require.NoError(t, err)
	publish(t, js, same(before, "tick", "u1")...) // history the clients never see
	g := newLiveGateway(t, liveOptions{nats: ns})

	var current atomic.Pointer[string]
	current.Store(&g.url)
	url := func() string { return *current.Load() }
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	rs := make([]*resumer, clients)
	for i := range rs {
		rs[i] = &resumer{start: before} // each starts after the history, whenever it connects
		wg.Go(func() { rs[i].run(ctx, client, url) })
	}
	require.Eventually(t, func() bool { return promValue(g.reg, "kiln_gateway_sse_clients") == clients },
		2*time.Minute, 50*time.Millisecond, "every client connected")
	publish(t, js, same(1, "tick", "u1")...)
	total := uint64(before + 1)
	allAt := func(seq uint64) func() bool {
		return func() bool {
			for _, r := range rs {
				if r.last() < seq {
					return false
				}
			}
			return true
		}
	}
	require.Eventually(t, allAt(total), 2*time.Minute, 50*time.Millisecond)

	// Count the JetStream API requests from here on.
	var calls atomic.Int64
	var sub *nats.Subscription
	nc := ns.Connect(t)
	sub, err = nc.Subscribe("$JS.API.>", func(*nats.Msg) { calls.Add(1) })
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	g.stop()
	publish(t, js, same(during, "tick", "u1")...) // stored while the gateway is down
	g2 := newLiveGateway(t, liveOptions{nats: ns})
	current.Store(&g2.url)
	publish(t, js, same(after, "tick", "u1")...) // while the clients resume
	total += during + after
	require.Eventually(t, allAt(total), 3*time.Minute, 50*time.Millisecond, "every client resumed")
	apiCalls := calls.Load()

	for i, r := range rs {
		r.mu.Lock()
		require.Equal(t, consecutive(before+1, total), r.seqs, "client %d: every event once, in order", i)
		r.mu.Unlock()
		require.GreaterOrEqual(t, r.resumes.Load(), int32(1), "client %d resumed", i)
	}
	t.Logf("%d clients resumed after a restart with %d JetStream API requests", clients, apiCalls)
	// A consumer per client was >= 3 requests each (stream info, create,
	// delete): 1500+. The hub's own start takes a handful.
	require.Less(t, apiCalls, int64(50), "JetStream API requests do not grow with the resuming clients")
}

// A resume position beyond the last sequence — up to the largest uint64 —
// is just live: it never wraps around into a replay of the whole stream.
func TestStreamSinceBeyondTheEndIsJustLive(t *testing.T) {
	t.Parallel()
	g := newLiveGateway(t, liveOptions{})
	publish(t, g.js, same(5, "a", "u1")...)
	for _, since := range []string{"6", "1000", "18446744073709551614", "18446744073709551615"} {
		c := openStream(t, g.url+"/stream?since="+since)
		c.requireConnected(t)
		h := openStream(t, g.url+"/stream", "Last-Event-ID", since)
		h.requireConnected(t)
		seqs := publish(t, g.js, same(1, "a", "u1")...)
		require.Equal(t, seqs, c.eventsUntil(t, seqs[0]), "since=%s: only what came after", since)
		require.Equal(t, seqs, h.eventsUntil(t, seqs[0]), "Last-Event-ID %s: only what came after", since)
		c.close()
		h.close()
	}
}
