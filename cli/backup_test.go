package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	"github.com/kilnhq/kiln/cli/internal/backup"
	"github.com/kilnhq/kiln/cli/internal/command"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

var backupTypes = []string{"page_view", "signup", "checkout", "search"}

// acked is what the source acknowledged: event id → stream sequence, and
// each id's type.
type acked struct {
	mu   sync.Mutex
	seq  map[string]uint64
	kind map[string]string
}

// postBatch posts events id := prefix-i for i in [0, n) as one NDJSON batch,
// retrying 503/429 as a client does, and records every acknowledged id.
func (a *acked) postBatch(base, prefix string, n int) error {
	var lines []string
	kinds := map[string]string{}
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		typ := backupTypes[len(id)%len(backupTypes)]
		kinds[id] = typ
		lines = append(lines, fmt.Sprintf(`{"id":%q,"eventType":%q,"userId":"u%d","timestamp":%d}`, id, typ, i%7, time.Now().UnixMilli()))
	}
	body := strings.Join(lines, "\n")
	// A client's retry of 503/429 for up to two minutes, not a synchronisation.
	_, err := backoff.Retry(context.Background(), func() (struct{}, error) {
		resp, err := http.Post(base+"/events", "application/x-ndjson", strings.NewReader(body))
		if err != nil {
			return struct{}{}, backoff.Permanent(err)
		}
		var out struct {
			Results []struct {
				ID    string          `json:"id"`
				Seq   uint64          `json:"seq"`
				Error json.RawMessage `json:"error"`
			} `json:"results"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || err != nil {
			err = fmt.Errorf("POST /events: status %d (%v)", resp.StatusCode, err)
			if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusTooManyRequests {
				err = backoff.Permanent(err)
			}
			return struct{}{}, err
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		failed := 0
		for _, r := range out.Results {
			if r.Error != nil || r.Seq == 0 {
				failed++
				continue
			}
			a.seq[r.ID], a.kind[r.ID] = r.Seq, kinds[r.ID]
		}
		if failed > 0 {
			return struct{}{}, fmt.Errorf("POST /events: %d of %d events not stored", failed, n)
		}
		return struct{}{}, nil
	}, backoff.WithBackOff(backoff.NewConstantBackOff(500*time.Millisecond)), backoff.WithMaxElapsedTime(2*time.Minute))
	return err
}

func postOne(t *testing.T, base, id, typ string) (seq uint64, duplicate bool) {
	t.Helper()
	resp, err := http.Post(base+"/events", "application/json",
		strings.NewReader(fmt.Sprintf(`{"id":%q,"eventType":%q,"userId":"u1","timestamp":%d}`, id, typ, time.Now().UnixMilli())))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	var out struct {
		Seq       uint64 `json:"seq"`
		Duplicate bool   `json:"duplicate"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out.Seq, out.Duplicate
}

type listedEvent struct {
	ID        string `json:"id"`
	EventType string `json:"eventType"`
	Seq       uint64 `json:"seq"`
}

// listAll pages through GET /events.
func listAll(base string) ([]listedEvent, error) {
	var all []listedEvent
	url := base + "/events?limit=1000"
	for {
		resp, err := http.Get(url)
		if err != nil {
			return nil, err
		}
		var page []listedEvent
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			return nil, fmt.Errorf("GET %s: status %d, %v", url, resp.StatusCode, err)
		}
		all = append(all, page...)
		next := resp.Header.Get("X-Next-Cursor")
		if next == "" {
			return all, nil
		}
		url = base + "/events?limit=1000&cursor=" + next
	}
}

// restoreInto runs kiln restore into a stopped standalone's data folder.
func restoreInto(ctx context.Context, dataDir, dir string, flags ...string) (string, error) {
	var out strings.Builder
	args := append([]string{"restore", dir, "--data-dir", dataDir}, flags...)
	err := command.Execute(ctx, args, command.IO{In: strings.NewReader(""), Out: &out, Err: &out})
	return out.String(), err
}

func TestBackupUnderLoadRestoresIntoFreshStandalone(t *testing.T) {
	ctx := context.Background()
	src := standalonetest.Start(t, t.TempDir(), "PROJECTOR_CHECK_INTERVAL", "100ms")
	a := &acked{seq: map[string]uint64{}, kind: map[string]string{}}
	for b := range 20 {
		require.NoError(t, a.postBatch(src.Base, fmt.Sprintf("pre%02d", b), 100))
	}

	// Load: batches keep arriving before, during and after the backup.
	stop := make(chan struct{})
	loadErr := make(chan error, 1)
	var batches sync.WaitGroup
	progress := make(chan int, 1000)
	batches.Go(func() {
		for b := 0; ; b++ {
			select {
			case <-stop:
				loadErr <- nil
				return
			default:
			}
			if err := a.postBatch(src.Base, fmt.Sprintf("load%04d", b), 25); err != nil {
				loadErr <- err
				return
			}
			progress <- b
		}
	})
	waitBatches := func(n int) {
		for range n {
			select {
			case <-progress:
			case err := <-loadErr:
				t.Fatalf("load stopped: %v", err)
			case <-time.After(2 * time.Minute):
				t.Fatal("load made no progress in 2 minutes")
			}
		}
	}
	waitBatches(5)
	dir := filepath.Join(t.TempDir(), "backup")
	start := time.Now()
	out, err := kiln(ctx, src, "backup", dir)
	require.NoError(t, err, out)
	took := time.Since(start)
	waitBatches(5) // acknowledged after the backup: not in it
	close(stop)
	batches.Wait()
	require.NoError(t, <-loadErr)
	m, err := backup.ReadManifest(dir)
	require.NoError(t, err)
	var size int64
	for _, s := range m.Streams {
		size += s.ArchiveBytes
	}
	srcAlerts := len(listAlerts(t, src.Base))
	t.Logf("backup of %d events under load (the source decided %d alerts): %d streams, %d archive bytes, %s\n%s",
		m.Streams[0].Messages, srcAlerts, len(m.Streams), size, took, out)
	src.Stop(t)

	// A fresh standalone: restored into its data folder, then started.
	dstDir := t.TempDir()
	start = time.Now()
	out, err = restoreInto(ctx, dstDir, dir)
	require.NoError(t, err, out)
	t.Logf("restore: %s\n%s", time.Since(start), out)
	started := time.Now()
	dst := standalonetest.Start(t, dstDir, "PROJECTOR_CHECK_INTERVAL", "100ms")

	pos := streamLastSeqAt(t, dst.NATSURL)
	require.GreaterOrEqual(t, pos, m.Streams[0].LastSeq, "the restored stream ends at or after the snapshot's start")
	want := map[string]uint64{}
	wantTypes := map[string]int64{}
	after := ""
	for id, seq := range a.seq {
		if seq <= pos {
			want[id] = seq
			wantTypes[a.kind[id]]++
		} else if after == "" {
			after = id
		}
	}
	require.NotEmpty(t, after, "the load went on after the backup point")
	t.Logf("restored stream ends at seq %d: %d acked ids in the backup, %d acked after it", pos, len(want), len(a.seq)-len(want))

	client, err := mongo.Connect(options.Client().ApplyURI(dst.MongoURI))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(ctx) })
	history := readmodel.FollowHistory(client.Database("kiln"))
	var last string
	rebuilt := assert.Eventually(t, func() bool {
		n, err := history.Count(ctx)
		met, merr := getMetrics(dst.Base)
		last = fmt.Sprintf("history %d (%v), metrics total %d (%v), want %d", n, err, met.Total, merr, len(want))
		return err == nil && merr == nil && n == int64(len(want)) && met.Total == int64(len(want))
	}, 5*time.Minute, 250*time.Millisecond)
	require.Truef(t, rebuilt, "read models never rebuilt: %s", last)
	t.Logf("read models rebuilt from the restored stream %s after kiln run started", time.Since(started))
	met, err := getMetrics(dst.Base)
	require.NoError(t, err)
	require.Equal(t, wantTypes, met.Totals, "counters by type")
	listed, err := listAll(dst.Base)
	require.NoError(t, err)
	got := map[string]uint64{}
	for _, ev := range listed {
		_, twice := got[ev.ID]
		require.False(t, twice, "event %s listed twice", ev.ID)
		got[ev.ID] = ev.Seq
	}
	require.Equal(t, want, got, "GET /events holds exactly the acked ids up to the backup point, at their sequences")

	// History fires nothing again: the notifier starts at new events.
	require.Empty(t, listAlerts(t, dst.Base), "no alert for restored events (the source had %d)", srcAlerts)

	// An id acknowledged before the backup is still a duplicate, of its
	// first sequence; one acknowledged after it is stored anew.
	for _, id := range []string{"pre00-0", "pre19-99"} {
		seq, dup := postOne(t, dst.Base, id, a.kind[id])
		require.True(t, dup, "re-POST of %s", id)
		require.Equal(t, want[id], seq, "re-POST of %s answers its original sequence", id)
	}
	seq, dup := postOne(t, dst.Base, after, a.kind[after])
	require.False(t, dup, "%s was acknowledged after the backup point: not in the restored deployment", after)
	require.Greater(t, seq, pos)
}

func streamLastSeqAt(t *testing.T, url string) uint64 {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	s, err := js.Stream(context.Background(), schemas.StreamName)
	require.NoError(t, err)
	return s.CachedInfo().State.LastSeq
}

func TestRestoreRefusesNonEmptyDeployment(t *testing.T) {
	ctx := context.Background()
	inDir := t.TempDir()
	in := standalonetest.Start(t, inDir)
	a := &acked{seq: map[string]uint64{}, kind: map[string]string{}}
	require.NoError(t, a.postBatch(in.Base, "r", 10))
	dir := filepath.Join(t.TempDir(), "backup")
	out, err := kiln(ctx, in, "backup", dir)
	require.NoError(t, err, out)

	out, err = kiln(ctx, in, "backup", dir)
	require.Error(t, err, "a second backup into the same directory")
	require.Contains(t, err.Error(), "already holds a backup")

	parent := t.TempDir()
	out, err = kiln(ctx, in, "backup", parent, "--stamp")
	require.NoError(t, err, out)
	stamped, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Len(t, stamped, 1, "--stamp writes one new folder")
	_, err = backup.ReadManifest(filepath.Join(parent, stamped[0].Name()))
	require.NoError(t, err)

	require.NoError(t, a.postBatch(in.Base, "s", 5))
	out, err = kiln(ctx, in, "restore", dir)
	require.ErrorIs(t, err, backup.ErrNotEmpty, out)
	require.Contains(t, err.Error(), "EVENTS holds 15 messages")
	require.Contains(t, err.Error(), "--force")
	require.Equal(t, uint64(15), streamLastSeqAt(t, in.NATSURL), "nothing changed")
	_, dup := postOne(t, in.Base, "s-4", a.kind["s-4"])
	require.True(t, dup, "the ledger is untouched")

	out, err = restoreInto(ctx, inDir, dir)
	require.ErrorContains(t, err, "stop it and restore again", "a running standalone's data folder: %s", out)

	incomplete := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(incomplete, "EVENTS"), 0o700))
	_, err = kiln(ctx, in, "restore", incomplete)
	require.ErrorContains(t, err, "not a Kiln backup, or one that did not finish")

	// Stopped, the same folder is refused without --force and replaced
	// with it: the 5 events after the backup are gone, their ids free.
	in.Stop(t)
	out, err = restoreInto(ctx, inDir, dir)
	require.ErrorIs(t, err, backup.ErrNotEmpty, out)
	out, err = restoreInto(ctx, inDir, dir, "--force")
	require.NoError(t, err, out)
	require.Contains(t, out, "a stream of 15 messages")
	in = standalonetest.Start(t, inDir)
	require.Equal(t, uint64(10), streamLastSeqAt(t, in.NATSURL))
	_, dup = postOne(t, in.Base, "r-3", a.kind["r-3"])
	require.True(t, dup, "an id in the backup")
	_, dup = postOne(t, in.Base, "s-4", a.kind["s-4"])
	require.False(t, dup, "an id acknowledged after the backup")
}
