package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// drLoad records what the primary acknowledged: id → sequence, and when
// the last acknowledgement arrived.
type drLoad struct {
	mu      sync.Mutex
	seq     map[string]uint64
	lastAck time.Time
	client  http.Client
}

// post sends one NDJSON batch once (no retry: after the cut nothing
// answers) and records the events answered with a sequence.
func (l *drLoad) post(base, prefix string, n int) error {
	var lines []string
	for i := range n {
		lines = append(lines, fmt.Sprintf(`{"id":"%s-%d","eventType":"page_view","userId":"u%d","timestamp":%d}`, prefix, i, i%7, time.Now().UnixMilli()))
	}
	resp, err := l.client.Post(base+"/events", "application/x-ndjson", strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Results []struct {
			ID  string `json:"id"`
			Seq uint64 `json:"seq"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("POST /events: status %d: %w", resp.StatusCode, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range out.Results {
		if r.Seq > 0 {
			l.seq[r.ID] = r.Seq
			l.lastAck = time.Now()
		}
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST /events: status %d", resp.StatusCode)
	}
	return nil
}

// streamIDs reads every event's id and sequence from EVENTS at url.
func streamIDs(t *testing.T, url string) (map[string]uint64, jetstream.StreamInfo) {
	t.Helper()
	ctx := context.Background()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	s, err := js.Stream(ctx, schemas.StreamName)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	ids := map[string]uint64{}
	if info.State.Msgs == 0 {
		return ids, *info
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{HeadersOnly: true})
	require.NoError(t, err)
	it, err := cons.Messages()
	require.NoError(t, err)
	defer it.Stop()
	for {
		msg, err := it.Next()
		require.NoError(t, err)
		md, err := msg.Metadata()
		require.NoError(t, err)
		id := msg.Headers().Get(schemas.HeaderMsgID)
		_, twice := ids[id]
		require.False(t, twice, "event %s stored twice", id)
		ids[id] = md.Sequence.Stream
		if md.Sequence.Stream >= info.State.LastSeq {
			return ids, *info
		}
	}
}

// startIngest runs `kiln serve ingest` against natsURL and waits until it
// is ready; it returns the base URL.
func startIngest(t *testing.T, natsURL string) (string, *serving) {
	t.Helper()
	httpAddr, admin := addr(t), addr(t)
	s := startRole(t, "ingest", map[string]string{"NATS_URL": natsURL, "INGEST_ADDR": httpAddr, "INGEST_ADMIN_ADDR": admin})
	require.Eventually(t, func() bool {
		if gone, err := s.exited(); gone {
			t.Fatalf("ingest stopped: %v\n%s", err, s.log.String())
		}
		code, _ := get("http://" + admin + "/readyz")
		return code == http.StatusOK
	}, 2*time.Minute, 50*time.Millisecond, "ingest never became ready")
	return "http://" + httpAddr, s
}

// TestMirrorPromoteAfterPrimaryCutMidLoad is the disaster-recovery drill
// of docs/operations.md: a DR nats-server mirrors the primary's streams
// through a leaf node (kiln mirror create), the primary is cut while two
// writers post, the mirrors are promoted (kiln mirror promote), and Kiln
// runs on against the DR deployment. Two cuts: the primary stops (the
// link stays up to its end), and the link to the DR site fails first and
// the primary stops after 200 more events were acknowledged (a recovery
// point by construction).
func TestMirrorPromoteAfterPrimaryCutMidLoad(t *testing.T) {
	t.Run("primary stops", func(t *testing.T) { mirrorDrill(t, false) })
	t.Run("link fails first", func(t *testing.T) { mirrorDrill(t, true) })
}

func mirrorDrill(t *testing.T, linkFirst bool) {
	ctx := context.Background()
	primary := startDomainNATS(t, "kiln-primary", "")
	link := testsupport.StartProxy(t, primary.LeafAddr())
	dr := startDomainNATS(t, "kiln-dr", link.Addr())
	require.Eventually(t, func() bool { return dr.srv.NumLeafNodes() == 1 && primary.srv.NumLeafNodes() == 1 },
		time.Minute, 20*time.Millisecond, "the DR server never connected as a leaf node")

	base, ingest := startIngest(t, primary.URL())
	// The primary site's read models, projected from the primary; when
	// the link fails first they are kept through the disaster and
	// rebuilt against the promoted stream (keptReadModels).
	stores := testsupport.StartMongo(t)
	keptRedis := testsupport.StartRedis(t)
	keptDB := testsupport.UniqueName(t) // random: apart from the DR site's database below
	projectorEnv := func(natsURL, db, redisURL string) map[string]string {
		return map[string]string{"NATS_URL": natsURL, "MONGO_URI": stores.URI(), "MONGO_DATABASE": db,
			"REDIS_URL": redisURL, "PROJECTOR_ADMIN_ADDR": addr(t), "PROJECTOR_CHECK_INTERVAL": "100ms"}
	}
	primaryProjector := startRole(t, "projector", projectorEnv(primary.URL(), keptDB, keptRedis.URL()))
	load := &drLoad{seq: map[string]uint64{}, client: http.Client{Timeout: 10 * time.Second}}
	for b := range 10 {
		require.NoError(t, load.post(base, fmt.Sprintf("pre%02d", b), 50))
	}

	// The mirrors: created from the DR side, fed through the leaf node.
	out, err := execute(t, nil, "mirror", "create", "--nats", dr.URL(), "--primary-domain", "kiln-primary")
	require.NoError(t, err, out)
	t.Logf("kiln mirror create:\n%s", out)
	require.Contains(t, out, "EVENTS")
	out, err = execute(t, nil, "mirror", "create", "--nats", dr.URL(), "--primary-domain", "kiln-primary")
	require.NoError(t, err, out)
	require.Contains(t, out, "exists", "create is idempotent")
	_, err = execute(t, nil, "mirror", "create", "--nats", primary.URL(), "--primary-domain", "kiln-primary")
	require.ErrorContains(t, err, "connect to the DR deployment")
	_, err = execute(t, nil, "mirror", "promote", "--nats", dr.URL())
	require.ErrorContains(t, err, "still answers", "no promotion while the primary is up")

	drConn, err := nats.Connect(dr.URL())
	require.NoError(t, err)
	defer drConn.Close()
	drJS, err := jetstream.New(drConn)
	require.NoError(t, err)
	mirrored := func() uint64 {
		s, err := drJS.Stream(ctx, schemas.StreamName)
		if err != nil {
			return 0
		}
		info, err := s.Info(ctx)
		if err != nil {
			return 0
		}
		return info.State.LastSeq
	}
	require.Eventually(t, func() bool { return mirrored() >= 500 }, 2*time.Minute, 20*time.Millisecond, "the mirror never caught up")

	// Load: two writers, until the cut.
	stop := make(chan struct{})
	var writers sync.WaitGroup
	batches := make(chan struct{}, 10_000)
	for w := range 2 {
		writers.Go(func() {
			for b := 0; ; b++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := load.post(base, fmt.Sprintf("w%d-%05d", w, b), 20); err == nil {
					batches <- struct{}{}
				}
			}
		})
	}
	for range 100 { // about 2,000 events acknowledged under load, then the cut
		select {
		case <-batches:
		case <-time.After(2 * time.Minute):
			t.Fatal("the load made no progress in 2 minutes")
		}
	}
	out, err = execute(t, nil, "mirror", "status", "--nats", dr.URL())
	require.NoError(t, err, out)
	require.Contains(t, out, "domain kiln-primary")
	t.Logf("kiln mirror status under load:\n%s", out)
	// At the cut: how far the mirror is behind the primary at that instant.
	primaryLast := streamLastSeqAt(t, primary.URL())
	ackedByMirror := mirrored()
	cutAt := time.Now()
	if linkFirst {
		link.Cut()
		load.mu.Lock()
		atCut := len(load.seq)
		load.mu.Unlock()
		require.Eventually(t, func() bool { // acknowledged by the primary, never mirrored
			load.mu.Lock()
			defer load.mu.Unlock()
			return len(load.seq) >= atCut+200
		}, 2*time.Minute, 10*time.Millisecond, "the load made no progress after the link failed")
	}
	primary.Shutdown()
	close(stop)
	writers.Wait()
	// The primary's ingest is left to stop in the background (its NATS is
	// gone; the test's cleanup waits for it): the DR side does not need it.
	go func() { _ = ingest.stop() }()
	go func() { _ = primaryProjector.stop() }()

	// Promote: the leaf is down, so the primary does not answer.
	start := time.Now()
	out, err = execute(t, nil, "mirror", "promote", "--nats", dr.URL())
	promoteTook := time.Since(start)
	require.NoError(t, err, out)
	t.Logf("kiln mirror promote (%s after the cut):\n%s", start.Sub(cutAt).Round(time.Millisecond), out)

	stored, info := streamIDs(t, dr.URL())
	load.mu.Lock()
	acked := maps.Clone(load.seq)
	lastAck := load.lastAck
	load.mu.Unlock()
	var lost, unacked []string
	for id, seq := range acked {
		got, ok := stored[id]
		if !ok {
			lost = append(lost, id)
			require.Greater(t, seq, ackedByMirror, "%s (seq %d) was in the mirror before the cut, and is lost", id, seq)
			continue
		}
		require.Equal(t, seq, got, "%s keeps its sequence", id)
	}
	for id := range stored {
		if _, ok := acked[id]; !ok {
			unacked = append(unacked, id)
		}
	}
	require.GreaterOrEqual(t, info.State.LastSeq, ackedByMirror, "nothing the mirror held before the cut is lost")
	slices.Sort(lost)
	if linkFirst {
		// 200 events were acknowledged after the link failed; of those, at
		// most the two writers' batches in flight (40) had been appended,
		// and mirrored, before it.
		require.GreaterOrEqual(t, len(lost), 160, "the events acknowledged after the link failed are the recovery point")
	}
	lag := time.Duration(0)
	if len(lost) > 0 {
		lag = lastAck.Sub(info.State.LastTime)
	}

	// Kiln runs on against the DR deployment: ingest appends, a mirrored
	// id is a duplicate of its sequence, a lost one is stored anew.
	drBase, _ := startIngest(t, dr.URL())
	for _, id := range []string{"pre00-0", "pre09-49"} {
		seq, dup := postOne(t, drBase, id, "page_view")
		require.True(t, dup, "re-POST of mirrored %s", id)
		require.Equal(t, acked[id], seq)
	}
	var latest string
	for id, seq := range stored {
		if latest == "" || seq > stored[latest] {
			latest = id
		}
	}
	seq, dup := postOne(t, drBase, latest, "page_view")
	require.True(t, dup, "re-POST of %s, the last mirrored event", latest)
	require.Equal(t, stored[latest], seq)
	seq, dup = postOne(t, drBase, "after-promotion-1", "page_view")
	require.False(t, dup)
	require.Equal(t, info.State.LastSeq+1, seq, "the promoted stream appends after the mirrored sequence")
	if len(lost) > 0 {
		seq, dup = postOne(t, drBase, lost[0], "page_view")
		require.False(t, dup, "%s was lost at the cut: its ledger entry is gone too", lost[0])
		require.Greater(t, seq, info.State.LastSeq)
	}

	// The read models: a projector against the DR deployment builds the
	// history from the promoted stream.
	final, _ := streamIDs(t, dr.URL())
	// One projector against the DR deployment (two would share its
	// durable consumers): with the DR site's own stores after the primary
	// stops, with the primary site's after the link fails.
	results := map[string]any{}
	if !linkFirst {
		// The DR site's own, empty stores: the projector rebuilds by itself.
		drRedis := testsupport.StartRedis(t)
		drDB := testsupport.UniqueName(t)
		rebuildStart := time.Now()
		startRole(t, "projector", projectorEnv(dr.URL(), drDB, drRedis.URL()))
		requireReadModels(t, final, stores.URI(), drDB, drRedis.URL(), "the DR site's new stores")
		results["read_models_rebuilt_ms"] = time.Since(rebuildStart).Milliseconds()
	} else {
		keptReadModels(t, final, projectorEnv(dr.URL(), keptDB, keptRedis.URL()), dr.URL(), results)
	}
	out, err = execute(t, nil, "mirror", "status", "--nats", dr.URL())
	require.NoError(t, err, out)
	require.Contains(t, out, "promoted (writable)")
	require.NotContains(t, out, "domain kiln-primary")

	maps.Copy(results, map[string]any{
		"test": "mirror_promote", "cut": map[bool]string{false: "primary stops", true: "link fails first"}[linkFirst],
		"acked": len(acked), "primary_last_seq_before_cut": primaryLast, "mirror_last_seq_before_cut": ackedByMirror,
		"promoted_events": len(stored), "promoted_last_seq": info.State.LastSeq,
		"recovery_point_events": len(lost), "recovery_point_lag_ms": lag.Milliseconds(),
		"stored_unacked": len(unacked), "promote_ms": promoteTook.Milliseconds(),
	})
	line, err := json.Marshal(results)
	require.NoError(t, err)
	t.Log(string(line))
}

// keptReadModels: the primary site's stores kept through the disaster hold
// events lost at the cut, and sequences the DR side now gives to other
// events; kiln replay rebuilds them from the promoted stream.
func keptReadModels(t *testing.T, final map[string]uint64, env map[string]string, drURL string, results map[string]any) {
	t.Helper()
	keptDB, mongoURI, keptRedis := env["MONGO_DATABASE"], env["MONGO_URI"], env["REDIS_URL"]
	startRole(t, "projector", env)
	keptHistory := historyIDs(t, mongoURI, keptDB)
	var kept map[string]int64
	require.Eventually(t, func() bool {
		kept = keptHistory()
		_, ok := kept["after-promotion-1"]
		return ok
	}, 3*time.Minute, 100*time.Millisecond, "the projector against the DR deployment never wrote into the kept history")
	stale := 0 // ids the kept history holds that the promoted stream does not
	for id := range kept {
		if _, ok := final[id]; !ok {
			stale++
		}
	}
	replayStart := time.Now()
	out, err := execute(t, nil, "replay", "all", "--yes", "--grace", "1s",
		"--nats", drURL, "--mongo", mongoURI, "--mongo-db", keptDB, "--redis", keptRedis)
	require.NoError(t, err, out)
	requireReadModels(t, final, mongoURI, keptDB, keptRedis, "the primary site's kept stores, replayed")
	results["kept_history_stale_before_replay"] = stale
	results["kept_read_models_replayed_ms"] = time.Since(replayStart).Milliseconds()
}

// historyIDs reads the live history generation's ids and sequences.
func historyIDs(t *testing.T, uri, db string) func() map[string]int64 {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	d := client.Database(db)
	return func() map[string]int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		gen, err := readmodel.HistoryGeneration(ctx, d)
		if err != nil {
			return nil
		}
		cur, err := d.Collection(readmodel.CollectionsFor(gen).Events).Find(ctx, bson.D{})
		if err != nil {
			return nil
		}
		var docs []struct {
			ID  string `bson:"_id"`
			Seq int64  `bson:"seq"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			return nil
		}
		ids := make(map[string]int64, len(docs))
		for _, d := range docs {
			ids[d.ID] = d.Seq
		}
		return ids
	}
}

// requireReadModels waits until the history in db and the counters in
// Redis hold exactly the events of stream (id → sequence).
func requireReadModels(t *testing.T, stream map[string]uint64, mongoURI, db, redisURL, what string) {
	t.Helper()
	history := historyIDs(t, mongoURI, db)
	rdb := redis.NewClient(mustParseRedis(t, redisURL))
	t.Cleanup(func() { _ = rdb.Close() })
	counters := readmodel.FollowCounters(rdb, readmodel.CountersOptions{})
	var got map[string]int64
	var total int64
	require.Eventually(t, func() bool {
		got = history()
		n, err := counters.Total(context.Background())
		total = n
		return err == nil && len(got) == len(stream) && total == int64(len(stream))
	}, 3*time.Minute, 100*time.Millisecond, "%s: the read models never equalled the promoted stream", what)
	for id, seq := range stream {
		require.Equal(t, int64(seq), got[id], "%s: history holds %s at its stream sequence", what, id)
	}
}
