package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"

	"github.com/kilnhq/kiln/schemas"
)

// Snapshot is the compiled latest version of every type, as one ingest
// instance validates against it.
type Snapshot struct {
	Registry *schemas.Registry
	// Versions is each type's latest version number.
	Versions map[string]int
	// Settings are the types' stored settings (absent: the defaults).
	Settings map[string]Settings
}

// Version is the latest version number of eventType, 0 when it has no
// schema of its own.
func (s *Snapshot) Version(eventType string) int { return s.Versions[eventType] }

// Live follows KILN_SCHEMAS and keeps the compiled latest versions: a
// version registered by any instance is validated against here as soon as
// it arrives. When the stream cannot be read, the last known versions stay
// in use and Stale says why.
type Live struct {
	cat *Catalog
	log *slog.Logger
	cur atomic.Pointer[Snapshot]

	mu      sync.Mutex
	stale   error
	ready   chan struct{}
	readyMu sync.Once
}

// NewLive starts from the embedded schemas (version 1 of each embedded
// type) until Run has read the catalog.
func NewLive(cat *Catalog, log *slog.Logger) (*Live, error) {
	docs, err := schemas.Embedded()
	if err != nil {
		return nil, err
	}
	reg, err := schemas.Compile(docs)
	if err != nil {
		return nil, err
	}
	versions := map[string]int{}
	for t := range docs {
		if t != "" {
			versions[t] = 1
		}
	}
	l := &Live{cat: cat, log: log, ready: make(chan struct{}), stale: errors.New("the schema catalog has not been read yet")}
	l.cur.Store(&Snapshot{Registry: reg, Versions: versions})
	return l, nil
}

// Current is the snapshot to validate against now.
func (l *Live) Current() *Snapshot { return l.cur.Load() }

// Ready is closed once the catalog has been read the first time.
func (l *Live) Ready() <-chan struct{} { return l.ready }

// Stale is nil while the catalog is followed; otherwise why the versions
// in use may be behind. (While the connection is down, the reader waits
// for it rather than failing: the connection's state says it.)
func (l *Live) Stale() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stale != nil {
		return l.stale
	}
	if st := l.cat.js.Conn().Status(); st != nats.CONNECTED {
		return fmt.Errorf("following %s: NATS connection %s", StreamName, st)
	}
	return nil
}

func (l *Live) setStale(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stale = err
}

// Run follows the catalog until ctx ends, starting over (with backoff) when
// reading it fails.
func (l *Live) Run(ctx context.Context) error {
	b := backoff.NewExponentialBackOff()
	b.MaxInterval = 10 * time.Second
	for {
		started := time.Now()
		err := l.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		l.setStale(fmt.Errorf("following %s: %w", StreamName, err))
		l.log.Warn("schema catalog unreachable: validating against the last known versions", "err", err)
		if time.Since(started) > time.Minute {
			b.Reset()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(b.NextBackOff()):
		}
	}
}

// follow reads every version, compiles once caught up, then recompiles on
// each new version.
func (l *Live) follow(ctx context.Context) error {
	docs, err := schemas.Embedded()
	if err != nil {
		return err
	}
	versions := map[string]int{}
	settings := map[string]Settings{}
	caughtUp := false
	apply := func() {
		reg, err := schemas.Compile(docs)
		if err != nil {
			l.log.Error("schema catalog does not compile: keeping the previous versions", "err", err)
			return
		}
		l.cur.Store(&Snapshot{Registry: reg, Versions: maps.Clone(versions), Settings: maps.Clone(settings)})
	}
	return l.cat.Watch(ctx, func(v Version) error {
		docs[v.Type] = v.Schema
		versions[v.Type] = v.Version
		if caughtUp {
			apply()
			l.log.Info("schema version in use", "type", v.Type, "version", v.Version)
		}
		return nil
	}, func(st Settings) error {
		settings[st.Type] = st
		if caughtUp {
			apply()
		}
		return nil
	}, func() {
		caughtUp = true
		apply()
		l.setStale(nil)
		l.readyMu.Do(func() { close(l.ready) })
	})
}
