// Command kiln is Kiln's operations CLI: replay read models from the
// stream, inspect projections, the stream and dead letters.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kilnhq/kiln/cli/internal/command"
)

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3" (Makefile, goreleaser).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	io := command.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv, Version: version}
	if err := command.Execute(ctx, os.Args[1:], io); err != nil {
		fmt.Fprintln(os.Stderr, "kiln:", err)
		os.Exit(1)
	}
}
