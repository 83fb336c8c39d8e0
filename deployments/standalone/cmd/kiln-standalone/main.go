// Command kiln-standalone runs all of Kiln in one process: embedded NATS
// JetStream and FerretDB with data under KILN_DATA_DIR, Redis from
// REDIS_URL or in-process, every service on PORT (default 8080).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kilnhq/kiln/standalone"
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
		fmt.Fprintln(os.Stderr, "kiln-standalone:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, environ []string, stderr io.Writer) error {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	cfg, err := standalone.LoadConfig(env)
	if err != nil {
		return err
	}
	return standalone.Run(ctx, cfg, stderr)
}
