package deployments

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/projector"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// natsCluster is three embedded nats-servers forming one JetStream cluster,
// configured from deployments/nats/cluster/nats-N.conf with local ports and
// stores.
type natsCluster struct {
	servers []*server.Server
}

func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	const nodes = 3
	routePorts := make([]int, nodes)
	routes := make([]*url.URL, nodes)
	for i := range nodes {
		routePorts[i] = testsupport.FreePort(t)
		routes[i] = &url.URL{Scheme: "nats", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(routePorts[i]))}
	}
	c := &natsCluster{}
	for i := range nodes {
		opts := loadNATSConfig(t, filepath.Join("nats", "cluster", fmt.Sprintf("nats-%d.conf", i+1)))
		// The deployed config, on this machine: free ports, temp store, no
		// monitoring listener, routes to the three local nodes.
		opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
		opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", routePorts[i]
		opts.Routes = routes
		opts.StoreDir = t.TempDir()
		opts.NoLog, opts.NoSigs = true, true
		s, err := server.NewServer(opts)
		require.NoError(t, err)
		s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		require.True(t, s.ReadyForConnections(10*time.Second), "node %d", i+1)
		c.servers = append(c.servers, s)
	}
	return c
}

// urls is the comma-separated client URL list, as NATS_URL holds it.
func (c *natsCluster) urls() string {
	u := make([]string, len(c.servers))
	for i, s := range c.servers {
		u[i] = s.ClientURL()
	}
	return strings.Join(u, ",")
}

func (c *natsCluster) server(name string) *server.Server {
	for _, s := range c.servers {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

// postResult is one POST /events and its answer.
type postResult struct {
	start, end time.Time
	status     int
	id         string
	duplicate  bool // a retried id that had been stored before
	err        error
}

// TestClusterStreamLeaderLoss runs ingest and the projector against a 3-node
// JetStream cluster with EVENTS at three replicas, posts events without a
// pause, shuts the stream leader's server down mid-load (the node ingest is
// connected to, so its client must move to another) and keeps posting.
// Half the clients send their own ids and retry 503s with them. Every event
// answered 202 must be in the read model exactly once. It reports how long
// ingest answered 503 while the stream elected a new leader.
func TestClusterStreamLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster, FerretDB and redis-server")
	}
	ctx := t.Context()
	log := testsupport.Logger(t)
	cl := startNATSCluster(t)
	urls := cl.urls()

	// A client of our own, on every node, to watch the stream.
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := js.AccountInfo(ctx)
		return err == nil
	}, 3*time.Minute, 100*time.Millisecond, "JetStream cluster has no meta leader")

	// Ingest, as cmd/ingest builds it, with NATS_URL listing the three nodes.
	icfg, err := ingest.LoadConfig(map[string]string{
		"NATS_URL": urls, "STREAM_REPLICAS": "3", "INGEST_PUBLISH_TIMEOUT": "2s",
	})
	require.NoError(t, err)
	inc, err := connect.NATS(icfg.NATSURL, "cluster-ingest", connect.Append, log)
	require.NoError(t, err)
	t.Cleanup(inc.Close)
	isvc, err := ingest.New(ctx, icfg, ingest.Deps{NATS: inc, Metrics: prometheus.NewRegistry(), Log: log})
	require.NoError(t, err)
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: icfg.MaxBodyBytes, Log: log})
	httpserver.RegisterHealth(app, isvc.Ready)
	isvc.Register(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srvCtx, stopHTTP := context.WithCancel(context.Background())
	httpDone := make(chan error, 1)
	go func() { httpDone <- httpserver.ServeListener(srvCtx, app, ln, 5*time.Second, log) }()
	t.Cleanup(func() { stopHTTP(); require.NoError(t, <-httpDone) })
	ingestURL := "http://" + ln.Addr().String() + "/events"

	stream, err := js.Stream(ctx, schemas.StreamName)
	require.NoError(t, err)
	require.Equal(t, 3, stream.CachedInfo().Config.Replicas)

	// The projector, on its own connection to every node.
	db := testsupport.StartMongo(t).Database(t)
	rdb := testsupport.StartRedis(t).Client(t)
	pnc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(pnc.Close)
	pjs, err := jetstream.New(pnc)
	require.NoError(t, err)
	pcfg, err := projector.LoadConfig(map[string]string{"PROJECTOR_ACK_WAIT": "2s", "PROJECTOR_CHECK_INTERVAL": "100ms"})
	require.NoError(t, err)
	psvc, err := projector.New(ctx, pcfg, projector.Deps{JetStream: pjs, Mongo: db, Redis: rdb, Metrics: prometheus.NewRegistry(), Log: log})
	require.NoError(t, err)
	pctx, stopProjector := context.WithCancel(context.Background())
	projDone := make(chan error, 1)
	go func() { projDone <- psvc.Run(pctx) }()
	t.Cleanup(func() { stopProjector(); require.NoError(t, <-projDone) })

	// Make the stream leader the node ingest is connected to, so that losing
	// the leader also makes ingest's client reconnect elsewhere.
	victim := inc.ConnectedServerName()
	require.Eventually(t, func() bool {
		info, err := stream.Info(ctx)
		if err != nil || info.Cluster == nil {
			return false
		}
		if info.Cluster.Leader == victim && replicasCurrent(info) {
			return true
		}
		req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": victim}})
		_, _ = nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+schemas.StreamName, req, 2*time.Second)
		return false
	}, 3*time.Minute, 250*time.Millisecond, "could not move the stream leader to %s", victim)

	// Load: workers post single events back to back.
	const workers = 4
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	t.Cleanup(client.CloseIdleConnections)
	var (
		mu      sync.Mutex
		results []postResult
	)
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		// Odd workers send their own ids and, like a well-behaved client,
		// retry a 503 with the same id; even workers let Kiln assign ids
		// and move on.
		clientIDs := w%2 == 1
		wg.Go(func() {
			for n := 0; ; n++ {
				id := ""
				if clientIDs {
					id = fmt.Sprintf("cluster-w%d-%06d", w, n)
				}
				for {
					select {
					case <-stopLoad:
						return
					default:
					}
					r := postEvent(client, ingestURL, fmt.Sprintf("w%d", w), id, n)
					mu.Lock()
					results = append(results, r)
					mu.Unlock()
					if !clientIDs || r.status != http.StatusServiceUnavailable {
						break
					}
				}
			}
		})
	}
	accepted := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range results {
			if r.status == http.StatusAccepted {
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return accepted() >= 300 }, 3*time.Minute, 10*time.Millisecond, "load never got going")

	// Shut the stream leader down under load.
	killedAt := time.Now()
	cl.server(victim).Shutdown()
	t.Logf("shut down %s, the EVENTS leader and ingest's node, after %d accepted events", victim, accepted())

	// Keep posting until ingest has answered 202 again for a while.
	before := accepted()
	require.Eventually(t, func() bool { return accepted() >= before+500 }, 3*time.Minute, 10*time.Millisecond,
		"ingest did not accept events again after the leader change")
	close(stopLoad)
	wg.Wait()

	require.NotEqual(t, victim, inc.ConnectedServerName(), "ingest's client moved to a live node")
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.NotEqual(t, victim, info.Cluster.Leader, "a new stream leader")

	// Every answer was a 202 or a 503; measure the 503s around the change.
	var acked []string
	var first503, last503 time.Time
	n503, duplicates := 0, 0
	seen := map[string]bool{}
	for _, r := range results {
		require.NoError(t, r.err)
		switch r.status {
		case http.StatusAccepted:
			require.NotEmpty(t, r.id)
			if r.duplicate {
				duplicates++
			}
			require.False(t, seen[r.id] && !r.duplicate, "id %s stored twice", r.id)
			if !seen[r.id] {
				seen[r.id] = true
				acked = append(acked, r.id)
			}
		case http.StatusServiceUnavailable:
			n503++
			if first503.IsZero() || r.start.Before(first503) {
				first503 = r.start
			}
			if r.end.After(last503) {
				last503 = r.end
			}
		default:
			require.Failf(t, "unexpected status", "POST /events answered %d", r.status)
		}
	}
	var window, sinceKill time.Duration
	if n503 > 0 {
		window, sinceKill = last503.Sub(first503), last503.Sub(killedAt)
	}
	t.Logf("leader change: %d requests, %d events accepted, %d answers 503 over %s (last 503 answered %s after the shutdown), %d retries answered duplicate",
		len(results), len(acked), n503, window.Round(time.Millisecond), sinceKill.Round(time.Millisecond), duplicates)
	line, err := json.Marshal(map[string]any{
		"bench": "cluster_leader_change_503_window", "value": window.Milliseconds(), "unit": "ms",
		"requests": len(results), "accepted": len(acked), "unavailable": n503, "since_shutdown_ms": sinceKill.Milliseconds(),
	})
	require.NoError(t, err)
	fmt.Println(string(line))

	// Every acknowledged event reaches the read model exactly once, and the
	// read model holds exactly the stream (no event twice).
	info, err = stream.Info(ctx)
	require.NoError(t, err)
	history := readmodel.FollowHistory(db)
	require.Eventually(t, func() bool {
		n, err := history.Count(ctx)
		return err == nil && uint64(n) == info.State.Msgs
	}, 3*time.Minute, 100*time.Millisecond, "the projector did not catch up with the %d events of the stream", info.State.Msgs)
	events := db.Collection("events")
	for i := 0; i < len(acked); i += 500 {
		ids := acked[i:min(i+500, len(acked))]
		n, err := events.CountDocuments(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
		require.NoError(t, err)
		require.EqualValues(t, len(ids), n, "acked events missing from the read model")
	}
	for _, id := range acked[:min(len(acked), 50)] {
		n, err := events.CountDocuments(ctx, bson.D{{Key: "_id", Value: id}})
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "event %s", id)
	}
	require.GreaterOrEqual(t, info.State.Msgs, uint64(len(acked)))
	requireRedisModels(t, readmodel.FollowCounters(rdb, readmodel.CountersOptions{}),
		readmodel.FollowRecent(rdb, readmodel.RecentOptions{}), info.State.Msgs, acked)
}

// requireRedisModels checks the projector's Redis side against the stream
// (msgs events, every one a page_view) and the acked ids: the counters hold
// msgs events in all and per type (an id stored twice would count twice),
// and the recent cache, once it answers, holds every event once and every
// acked id.
func requireRedisModels(t *testing.T, counters *readmodel.Counters, recent *readmodel.Recent, msgs uint64, acked []string) {
	t.Helper()
	ctx := t.Context()
	var m readmodel.Metrics
	require.Eventually(t, func() bool {
		var err error
		m, err = counters.Snapshot(ctx, time.Now())
		return err == nil && uint64(m.Total) == msgs
	}, 3*time.Minute, 100*time.Millisecond, "counters never reached the %d events of the stream (last %d)", msgs, m.Total)
	require.Equal(t, map[string]int64{"page_view": int64(msgs)}, m.Totals, "counters by type")

	var events []struct {
		ID string `json:"id"`
	}
	var why string
	require.Eventually(t, func() bool {
		page, ok, reason, err := recent.Find(ctx, readmodel.Query{Limit: int(msgs) + 1})
		why = fmt.Sprintf("usable %v (%s), err %v", ok, reason, err)
		if err != nil || !ok || page.Next != nil {
			return false
		}
		events = events[:0]
		return json.Unmarshal(page.Body, &events) == nil && uint64(len(events)) == msgs
	}, 3*time.Minute, 100*time.Millisecond, "the recent cache never held the %d events of the stream (%s, %d ids)", msgs, why, len(events))
	ids := make(map[string]bool, len(events))
	for _, ev := range events {
		require.False(t, ids[ev.ID], "event %s twice in the recent cache", ev.ID)
		ids[ev.ID] = true
	}
	for _, id := range acked {
		require.True(t, ids[id], "acked event %s missing from the recent cache", id)
	}
}

// replicasCurrent reports whether every follower of the stream is caught up.
func replicasCurrent(info *jetstream.StreamInfo) bool {
	if len(info.Cluster.Replicas) != 2 {
		return false
	}
	for _, r := range info.Cluster.Replicas {
		if !r.Current || r.Offline {
			return false
		}
	}
	return true
}

// postEvent posts one event (with the client id id, unless empty) and
// returns the answer.
func postEvent(client *http.Client, target, user, id string, n int) postResult {
	clientID := ""
	if id != "" {
		clientID = fmt.Sprintf(`"id":%q,`, id)
	}
	body := fmt.Sprintf(`{%s"eventType":"page_view","userId":%q,"timestamp":%d,"metadata":{"n":%d}}`,
		clientID, user, time.Now().UnixMilli(), n)
	r := postResult{start: time.Now()}
	resp, err := client.Post(target, "application/json", strings.NewReader(body))
	r.end = time.Now()
	if err != nil {
		r.err = err
		return r
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.err = err
		return r
	}
	r.status = resp.StatusCode
	if r.status == http.StatusAccepted {
		var ans struct {
			ID        string `json:"id"`
			Duplicate bool   `json:"duplicate"`
		}
		r.err = json.Unmarshal(b, &ans)
		r.id, r.duplicate = ans.ID, ans.Duplicate
		if id != "" && r.id != id {
			r.err = fmt.Errorf("posted id %s, answered %s", id, r.id)
		}
	}
	return r
}
