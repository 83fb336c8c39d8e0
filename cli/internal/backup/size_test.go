package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/idledger"
	"github.com/kilnhq/kiln/testsupport"
)

// BenchmarkBackupAndRestore measures a backup and a restore of 100,000
// events with client ids: the figures in docs/operations.md, "Backup and
// restore" (go test -run '^$' -bench BackupAndRestore ./cli/internal/backup/).
func BenchmarkBackupAndRestore(b *testing.B) {
	const n = 100_000
	t := b
	ctx := context.Background()
	connect := func(url string) jetstream.JetStream {
		nc, err := nats.Connect(url)
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
		require.NoError(t, err)
		return js
	}
	js := connect(testsupport.StartNATS(t).URL())
	_, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{Replicas: 1, DuplicateWindow: 2 * time.Minute})
	require.NoError(t, err)
	_, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: idledger.Bucket, History: 1, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	now := time.Now().UnixMilli()
	for i := range n {
		id := fmt.Sprintf("order-%08d", i)
		ev := schemas.Event{ID: id, EventType: []string{"page_view", "signup", "checkout"}[i%3], UserID: fmt.Sprintf("user-%d", i%5000),
			Timestamp: now - int64(i), ReceivedAt: now, Metadata: json.RawMessage(`{"path":"/products/42","referrer":"https://example.com/","amount":1999}`)}
		data, _ := json.Marshal(ev)
		msg := nats.NewMsg(schemas.Subject(ev.EventType))
		msg.Data = data
		msg.Header.Set(schemas.HeaderMsgID, id)
		_, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute))
		require.NoError(t, err)
		_, err = js.PublishAsync(idledger.SubjectPrefix+idledger.Key(id), strconv.AppendUint(nil, uint64(i+1), 10), jetstream.WithStallWait(time.Minute))
		require.NoError(t, err)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		t.Fatal("publish did not complete")
	}

	var backupTook, restoreTook time.Duration
	var size int64
	b.ResetTimer()
	for b.Loop() {
		dir := filepath.Join(t.TempDir(), "backup")
		start := time.Now()
		m, err := Backup(ctx, js.Conn(), dir, Options{})
		require.NoError(t, err)
		backupTook += time.Since(start)
		size = 0
		for _, s := range m.Streams {
			size += s.ArchiveBytes
			t.Logf("%s: %d messages, %d bytes in the stream, archive %d bytes, %s", s.Name, s.Messages, s.Bytes, s.ArchiveBytes, s.Took)
		}
		restored := connect(testsupport.StartNATS(t).URL())
		start = time.Now()
		r, err := Restore(ctx, restored.Conn(), dir, RestoreOptions{})
		require.NoError(t, err)
		restoreTook += time.Since(start)
		require.Equal(t, uint64(n), r.Streams[0].Messages)
		require.Equal(t, n, r.Ledger.Entries)
	}
	b.ReportMetric(float64(size), "archive-bytes")
	b.ReportMetric(float64(size)/n, "archive-bytes/event")
	b.ReportMetric(backupTook.Seconds()/float64(b.N), "backup-s")
	b.ReportMetric(restoreTook.Seconds()/float64(b.N), "restore-s")
}
