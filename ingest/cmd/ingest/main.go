// Command ingest runs Kiln's ingest service: POST /events into JetStream.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kilnhq/kiln/ingest"
)

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3" (Makefile, Dockerfiles, goreleaser).
var version = "dev"

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println(version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Environ(), os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, environ []string, stderr io.Writer) error {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil)).With("service", "ingest", "version", version)
	cfg, err := ingest.LoadConfig(env)
	if err != nil {
		return err
	}
	return ingest.Run(ctx, cfg, log)
}
