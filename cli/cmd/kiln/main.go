// Command kiln is all of Kiln in one binary: `kiln run` (everything in one
// process), `kiln serve <role>` (one role per process) and the operations
// commands (replay, projections, stream, events, dlq, webhooks, rules,
// healthcheck). `kiln --help` lists them.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kilnhq/kiln/cli/internal/command"
)

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3" (Makefile, Dockerfile, goreleaser).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kiln:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return command.Execute(ctx, args, command.IO{In: stdin, Out: stdout, Err: stderr, Env: env, Version: version})
}
