// Command ferretdb-runner runs embedded FerretDB (SQLite handler) for tests.
//
// It listens on -listen (127.0.0.1 with a random port by default), stores its
// data under -dir, prints the MongoDB URI as the first line of stdout once it
// accepts connections, and shuts down cleanly when stdin reaches EOF (its
// parent closed the pipe or died) or on SIGINT/SIGTERM.
//
// The testsupport package builds it without -race and runs it as a child
// process: FerretDB's embedded constructor writes a package-level variable,
// so several in-process instances trip the race detector, and a
// race-instrumented SQLite would be linked into every test binary.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-runner:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", "", "SQLite data directory (required)")
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on")
	level := flag.String("log-level", "warn", "log level for stderr: debug, info, warn or error")
	flag.Parse()

	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("bad -log-level: %w", err)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dir + "/",
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})),
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Stop on stdin EOF, so the server never outlives the test binary.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	// MongoDBURI blocks until the listener is ready.
	if _, err := fmt.Println(f.MongoDBURI()); err != nil {
		stop()
		<-done
		return err
	}

	return <-done
}
