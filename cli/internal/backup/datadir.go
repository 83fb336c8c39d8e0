package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kilnhq/kiln/app/standalone"
	"github.com/kilnhq/kiln/app/standalone/embedded"
	"github.com/kilnhq/kiln/connect"
)

// RestoreDataDir restores the backup in dir into a standalone's data
// folder while no `kiln run` uses it: it starts the standalone's embedded
// NATS on dataDir (on a free local port), restores into it and stops it.
// The next `kiln run` on dataDir starts from the restored streams.
func RestoreDataDir(ctx context.Context, dataDir, dir string, o RestoreOptions) (*Restored, error) {
	if o.Log == nil {
		o.Log = discardLog()
	}
	if err := notRunning(dataDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("restore: create data folder %s: %w", dataDir, err)
	}
	ns, err := embedded.StartNATS("127.0.0.1", -1, dataDir, o.Log)
	if err != nil {
		return nil, fmt.Errorf("restore: start NATS on %s: %w", dataDir, err)
	}
	defer ns.Shutdown()
	nc, err := connect.NATS(ns.URL(), "kiln-restore", connect.Command, o.Log)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer nc.Close()
	return Restore(ctx, nc, dir, o)
}

// notRunning refuses a data folder a live `kiln run` names in its
// discovery file: two NATS servers must never share a store.
func notRunning(dataDir string) error {
	path := filepath.Join(dataDir, standalone.DiscoveryFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore: read %s: %w", path, err)
	}
	var d struct {
		PID     int    `json:"pid"`
		NATSURL string `json:"natsUrl"`
	}
	if err := json.Unmarshal(b, &d); err != nil || d.PID <= 0 {
		return fmt.Errorf("restore: %s exists and does not name a process: if no kiln run uses %s, remove it", path, dataDir)
	}
	// Signal 0 checks that the process exists (a file left by a killed
	// kiln run names a dead one).
	if p, err := os.FindProcess(d.PID); err == nil {
		if err := p.Signal(syscall.Signal(0)); err == nil || errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("restore: a kiln run (pid %d, NATS %s) uses %s: stop it and restore again, or restore into it with --nats (its roles then stop and must be started again)",
				d.PID, d.NATSURL, dataDir)
		}
	}
	return nil
}
