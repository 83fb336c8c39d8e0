// Package backup takes and restores a consistent backup of the JetStream
// state Kiln cannot rebuild: the EVENTS stream (the source of truth), the
// id ledger (KV bucket EVENT_IDS, stream KV_EVENT_IDS) and the schema
// registry (stream KILN_SCHEMAS, when it exists). Each is copied with
// JetStream's own snapshot API (jsm.go's SnapshotToDirectory, the
// $JS.API.STREAM.SNAPSHOT request) while traffic flows, and put back with its
// restore API ($JS.API.STREAM.RESTORE). Nothing here reads store files.
//
// # Consistency
//
// The streams are snapshotted one after the other, EVENTS first. Every
// other stream describes events, so a snapshot of it taken later holds at
// least what the events in the EVENTS snapshot need:
//
//   - The ledger: ingest reserves a client id in the ledger (a pending entry
//     "p<unix ms>") BEFORE it appends the event, and replaces the
//     reservation with the event's stream sequence after the append
//     (ingest/internal/publish/reserve.go). An event in the EVENTS snapshot
//     was appended before that snapshot ended, so its reservation was
//     written before the ledger snapshot started: the ledger snapshot holds
//     the id, settled or still pending.
//   - The schema registry: an event is validated against versions that
//     were registered before it was ingested, so before the EVENTS
//     snapshot ended, so before the KILN_SCHEMAS snapshot started.
//
// The later snapshots also hold writes made after the EVENTS snapshot:
// ledger entries of events that are not in it (appended after), and
// reservations whose outcome the snapshot does not show. Restore settles
// both against the restored stream (package ledgersettle): a pending entry whose event
// is in the stream gets its sequence (it stays a duplicate), one whose event
// is not is removed (its writer was never acknowledged within the backup),
// and an entry whose sequence lies past the restored stream's last one is
// removed (its event was acknowledged after the backup point and is not
// restored: a client that posts it again is stored again, not told
// "duplicate" of an event that is not there). Schema versions registered
// after the EVENTS snapshot are kept: they are valid registrations.
//
// # Where a restore goes
//
// Restore writes only into an empty deployment: it refuses when EVENTS or
// the ledger holds messages, unless forced (then it deletes them first).
// KILN_SCHEMAS does not count, as every Kiln seeds it with the built-in
// schemas when it starts; the backup's replaces it. Deleting a stream
// deletes its consumers, so Kiln's roles must not run during a restore: a
// standalone is restored stopped, into its data folder, by starting its
// embedded NATS for the restore alone (RestoreDataDir).
//
// # What is not in a backup
//
// Consumers are left out (NoConsumers): the projector's durable consumers
// deliver from the start of the stream when created, so a restored
// deployment rebuilds MongoDB and Redis from the restored stream by itself;
// the notifier's and webhooks' consumers start at new events, so a restore
// fires no alert and no webhook for history. Work queues (WEBHOOKS, ALERTS,
// ALERTS_DLQ), projector status reports and the read models in MongoDB and
// Redis are not backed up; webhook endpoints and alert records live in
// MongoDB and need a MongoDB backup of their own (docs/operations.md).
package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/jsm.go"
	"github.com/nats-io/nats.go"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/schemas/idledger"
)

// Names of what a backup holds.
const (
	// ManifestFile is written last into a backup directory: a directory
	// without it holds no complete backup.
	ManifestFile = "manifest.json"
	// FormatVersion is the manifest's format.
	FormatVersion = 1
)

// Part is one stream of a backup, in the order it is taken.
type Part struct {
	Stream string `json:"stream"`
	// Role says what the stream is to Kiln.
	Role string `json:"role"`
	// Required parts fail the backup when missing; the others are
	// skipped (e.g. KILN_SCHEMAS before any schema was registered).
	Required bool `json:"-"`
}

// Parts is what a backup holds, in the order it is taken: EVENTS first
// (see the package documentation).
func Parts() []Part {
	return []Part{
		{Stream: schemas.StreamName, Role: "events", Required: true},
		{Stream: idledger.Stream, Role: "id ledger"},
		{Stream: catalog.StreamName, Role: "schema registry"},
	}
}

// Manifest describes a backup directory.
type Manifest struct {
	Format      int       `json:"format"`
	KilnVersion string    `json:"kilnVersion"`
	NATSServer  string    `json:"natsServer"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	Streams     []Stream  `json:"streams"`
}

// Stream is one snapshotted stream in a manifest.
type Stream struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// Dir is the snapshot's directory, relative to the backup's.
	Dir string `json:"dir"`
	// Messages, Bytes, FirstSeq and LastSeq are the stream's state as the
	// server reported it when the snapshot began.
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	FirstSeq uint64 `json:"firstSeq"`
	LastSeq  uint64 `json:"lastSeq"`
	// Archive is the snapshot file's name, size and SHA-256, checked by
	// restore.
	Archive       string        `json:"archive"`
	ArchiveBytes  int64         `json:"archiveBytes"`
	ArchiveSHA256 string        `json:"archiveSha256"`
	Took          time.Duration `json:"took"`
}

// Options configure a backup.
type Options struct {
	// KilnVersion is recorded in the manifest.
	KilnVersion string
	// Log receives progress; nil discards it.
	Log *slog.Logger
	// Timeout bounds each JetStream API request (default 30s).
	Timeout time.Duration
}

func (o *Options) setDefaults() {
	if o.Log == nil {
		o.Log = discardLog()
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
}

// Backup snapshots every part into dir (created if missing; it must not
// hold a backup already) and writes the manifest last.
func Backup(ctx context.Context, nc *nats.Conn, dir string, o Options) (*Manifest, error) {
	o.setDefaults()
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err == nil {
		return nil, fmt.Errorf("backup: %s already holds a backup: choose a new directory", dir)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("backup: %s is not empty (an unfinished backup?): choose a new directory, or remove it", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("backup: create %s: %w", dir, err)
	}
	mgr, err := jsm.New(nc, jsm.WithTimeout(o.Timeout))
	if err != nil {
		return nil, fmt.Errorf("backup: JetStream manager: %w", err)
	}
	m := &Manifest{Format: FormatVersion, KilnVersion: o.KilnVersion, NATSServer: nc.ConnectedServerVersion(), Started: time.Now().UTC()}
	for _, p := range Parts() {
		s, err := snapshot(ctx, mgr, dir, p, o.Log)
		if errors.Is(err, errSkipped) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w (%s holds an unfinished backup, without %s: remove it)", err, dir, ManifestFile)
		}
		m.Streams = append(m.Streams, *s)
	}
	m.Finished = time.Now().UTC()
	if err := writeManifest(dir, m); err != nil {
		return nil, err
	}
	return m, nil
}

var errSkipped = errors.New("skipped")

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func snapshot(ctx context.Context, mgr *jsm.Manager, dir string, p Part, log *slog.Logger) (*Stream, error) {
	known, err := mgr.IsKnownStream(p.Stream)
	if err != nil {
		return nil, fmt.Errorf("backup: look up stream %s: %w", p.Stream, err)
	}
	if !known {
		if p.Required {
			return nil, fmt.Errorf("backup: stream %s does not exist: is this a Kiln deployment (check --nats)?", p.Stream)
		}
		log.Info("stream absent; not in the backup", "stream", p.Stream)
		return nil, errSkipped
	}
	s, err := mgr.LoadStream(p.Stream)
	if err != nil {
		return nil, fmt.Errorf("backup: load stream %s: %w", p.Stream, err)
	}
	start := time.Now()
	sub := filepath.Join(dir, p.Stream)
	if _, err := s.SnapshotToDirectory(ctx, sub); err != nil {
		return nil, fmt.Errorf("backup: snapshot stream %s: %w", p.Stream, err)
	}
	archive, err := jsm.SnapshotDataPath(sub)
	if err != nil {
		return nil, fmt.Errorf("backup: snapshot of %s: %w", p.Stream, err)
	}
	st := &Stream{Name: p.Stream, Role: p.Role, Dir: p.Stream, Archive: filepath.Base(archive), Took: time.Since(start)}
	if st.ArchiveBytes, st.ArchiveSHA256, err = fileDigest(archive); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	meta, err := readSnapshotMeta(sub)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	st.Messages, st.Bytes, st.FirstSeq, st.LastSeq = meta.State.Msgs, meta.State.Bytes, meta.State.FirstSeq, meta.State.LastSeq
	log.Info("stream snapshotted", "stream", p.Stream, "messages", st.Messages, "lastSeq", st.LastSeq,
		"archiveBytes", st.ArchiveBytes, "took", st.Took)
	return st, nil
}

// snapshotMeta is the part of jsm.go's backup.json read here.
type snapshotMeta struct {
	Config struct {
		Name string `json:"name"`
	} `json:"config"`
	State struct {
		Msgs     uint64 `json:"messages"`
		Bytes    uint64 `json:"bytes"`
		FirstSeq uint64 `json:"first_seq"`
		LastSeq  uint64 `json:"last_seq"`
	} `json:"state"`
}

func readSnapshotMeta(dir string) (snapshotMeta, error) {
	var m snapshotMeta
	b, err := os.ReadFile(filepath.Join(dir, jsm.SnapshotMetaFile))
	if err != nil {
		return m, fmt.Errorf("read snapshot metadata: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("decode %s: %w", filepath.Join(dir, jsm.SnapshotMetaFile), err)
	}
	return m, nil
}

func fileDigest(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("read %s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

func writeManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("backup: encode manifest: %w", err)
	}
	tmp := filepath.Join(dir, ManifestFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("backup: write manifest: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ManifestFile)); err != nil {
		return fmt.Errorf("backup: write manifest: %w", err)
	}
	return nil
}

// ReadManifest reads and checks dir's manifest.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s: not a Kiln backup, or one that did not finish", dir, ManifestFile)
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("%s: format %d, this kiln reads format %d: restore with the kiln version that took it (%s)",
			filepath.Join(dir, ManifestFile), m.Format, FormatVersion, m.KilnVersion)
	}
	return &m, nil
}
