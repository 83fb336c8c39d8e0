package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/jsm.go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/cli/internal/ledgersettle"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/schemas/idledger"
)

// RestoreOptions configure a restore.
type RestoreOptions struct {
	// Force deletes streams that exist and hold messages before restoring
	// over them. Without it a non-empty EVENTS or id ledger refuses the
	// restore.
	Force bool
	// Log receives progress; nil discards it.
	Log *slog.Logger
	// Timeout bounds each JetStream API request (default 30s).
	Timeout time.Duration
}

// ErrNotEmpty is a restore refused because a stream it would replace holds
// messages.
var ErrNotEmpty = errors.New("the deployment is not empty")

// Restored is what a restore did.
type Restored struct {
	Manifest *Manifest
	// Streams are the restored streams' states, as the server reports
	// them after the restore.
	Streams []RestoredStream
	Ledger  ledgersettle.Report
	Took    time.Duration
}

// RestoredStream is one restored stream.
type RestoredStream struct {
	Name     string
	Messages uint64
	FirstSeq uint64
	LastSeq  uint64
	// Replaced is true when a stream of that name was deleted first;
	// ReplacedMessages is how many messages it held.
	Replaced         bool
	ReplacedMessages uint64
}

// Restore puts the backup in dir into the deployment nc reaches. It checks
// the archives against the manifest, refuses (ErrNotEmpty) when a stream
// to restore exists and holds messages unless o.Force, deletes the streams
// it replaces, restores each, then settles the id ledger against the
// restored EVENTS stream (package ledgersettle).
//
// Kiln's roles should not be running against the deployment meanwhile, or
// be restarted after it: deleting a stream deletes its consumers.
func Restore(ctx context.Context, nc *nats.Conn, dir string, o RestoreOptions) (*Restored, error) {
	if o.Log == nil {
		o.Log = discardLog()
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	start := time.Now()
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	for _, s := range m.Streams {
		if err := verifyArchive(dir, s); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	existing, err := checkTargets(ctx, js, m, o.Force)
	if err != nil {
		return nil, err
	}
	mgr, err := jsm.New(nc, jsm.WithTimeout(o.Timeout))
	if err != nil {
		return nil, fmt.Errorf("restore: JetStream manager: %w", err)
	}
	r := &Restored{Manifest: m}
	for _, s := range m.Streams {
		n, replaced := existing[s.Name]
		rs := RestoredStream{Name: s.Name, Replaced: replaced, ReplacedMessages: n}
		if rs.Replaced {
			if err := js.DeleteStream(ctx, s.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				return nil, fmt.Errorf("restore: delete stream %s before restoring it: %w", s.Name, err)
			}
			o.Log.Warn("stream deleted to restore the backup over it", "stream", s.Name, "messages", n)
		}
		_, state, err := mgr.RestoreSnapshotFromDirectory(ctx, s.Name, filepath.Join(dir, s.Dir))
		if err != nil {
			return nil, fmt.Errorf("restore: stream %s from %s: %w (the deployment is partly restored: run the restore again with --force)",
				s.Name, filepath.Join(dir, s.Dir), err)
		}
		rs.Messages, rs.FirstSeq, rs.LastSeq = state.Msgs, state.FirstSeq, state.LastSeq
		o.Log.Info("stream restored", "stream", s.Name, "messages", rs.Messages, "lastSeq", rs.LastSeq)
		r.Streams = append(r.Streams, rs)
	}
	if hasStream(m, idledger.Stream) {
		events, err := js.Stream(ctx, schemas.StreamName)
		if err != nil {
			return nil, fmt.Errorf("restore: stream %s: %w", schemas.StreamName, err)
		}
		if r.Ledger, err = ledgersettle.Settle(ctx, js, events, ledgersettle.Options{Log: o.Log}); err != nil {
			return nil, fmt.Errorf("restore: %w (the streams are restored; run the restore again with --force to redo it)", err)
		}
	}
	r.Took = time.Since(start)
	return r, nil
}

func hasStream(m *Manifest, name string) bool {
	for _, s := range m.Streams {
		if s.Name == name {
			return true
		}
	}
	return false
}

// checkTargets reports which of the backup's streams exist and how many
// messages each holds. It refuses, before anything is changed, when the
// deployment holds data (EVENTS or the id ledger is not empty) and force
// is false. The schema registry does not count: every Kiln seeds it with
// the built-in types' schemas when it starts, so an empty deployment that
// ran once holds some; it is replaced by the backup's.
func checkTargets(ctx context.Context, js jetstream.JetStream, m *Manifest, force bool) (map[string]uint64, error) {
	existing := map[string]uint64{}
	var full []string
	for _, s := range m.Streams {
		st, err := js.Stream(ctx, s.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("restore: look up stream %s: %w", s.Name, err)
		}
		n := st.CachedInfo().State.Msgs
		existing[s.Name] = n
		if n > 0 && s.Name != catalog.StreamName {
			full = append(full, fmt.Sprintf("%s holds %d messages (last seq %d)", s.Name, n, st.CachedInfo().State.LastSeq))
		}
	}
	if len(full) > 0 && !force {
		return nil, fmt.Errorf("restore: %w: %s; restore into an empty deployment, or pass --force to delete these streams and replace them with the backup",
			ErrNotEmpty, strings.Join(full, ", "))
	}
	return existing, nil
}

func verifyArchive(dir string, s Stream) error {
	path := filepath.Join(dir, s.Dir, s.Archive)
	n, sum, err := fileDigest(path)
	if err != nil {
		return fmt.Errorf("stream %s: %w", s.Name, err)
	}
	if n != s.ArchiveBytes || sum != s.ArchiveSHA256 {
		return fmt.Errorf("stream %s: %s is %d bytes with SHA-256 %s, the manifest says %d bytes, %s: the backup is damaged",
			s.Name, path, n, sum, s.ArchiveBytes, s.ArchiveSHA256)
	}
	return nil
}
