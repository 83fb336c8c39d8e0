package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// FerretDB is an embedded FerretDB v1 with the SQLite backend: a
// MongoDB-wire-protocol server for standalone mode.
type FerretDB struct {
	db     *ferretdb.FerretDB
	cancel context.CancelFunc
	done   chan struct{}
	uri    string
}

// StartFerretDB listens on addr (host:port, port 0 picks a free one) with its
// SQLite files under dir/ferretdb.
func StartFerretDB(addr, dir string, log *slog.Logger) (*FerretDB, error) {
	sqliteDir := filepath.Join(dir, "ferretdb")
	if err := os.MkdirAll(sqliteDir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded ferretdb: %w", err)
	}
	db, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + sqliteDir + "/",
		Logger:    log,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded ferretdb: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &FerretDB{db: db, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		if err := db.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("embedded ferretdb stopped", "err", err)
		}
	}()
	// MongoDBURI blocks until the listener is bound; Run failing first (a
	// port in use) would block it forever, so wait for either.
	uri := make(chan string, 1)
	go func() { uri <- db.MongoDBURI() }()
	select {
	case f.uri = <-uri:
		return f, nil
	case <-f.done:
		return nil, fmt.Errorf("embedded ferretdb: failed to start on %s (see the log above)", addr)
	case <-time.After(30 * time.Second):
		f.Shutdown()
		return nil, errors.New("embedded ferretdb: no listener after 30s")
	}
}

// Kind names the store for the log, the discovery file and benchmarks:
// "FerretDB v1.24.2 (embedded, SQLite)".
func (f *FerretDB) Kind() string {
	v := "(unknown version)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/FerretDB/FerretDB" {
				v = m.Version
			}
		}
	}
	return "FerretDB " + v + " (embedded, SQLite)"
}

// URI is the MongoDB connection string for the server.
func (f *FerretDB) URI() string { return f.uri }

// Shutdown stops the server and waits for it.
func (f *FerretDB) Shutdown() {
	f.cancel()
	<-f.done
}
