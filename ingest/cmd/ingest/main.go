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

func main() {
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
	log := slog.New(slog.NewJSONHandler(stderr, nil)).With("service", "ingest")
	cfg, err := ingest.LoadConfig(env)
	if err != nil {
		return err
	}
	return ingest.Run(ctx, cfg, log)
}
