// Command kiln-burst posts a burst of events (1,000,000 in batches of 1,000
// by default) to a running Kiln as fast as ingest accepts them, reads
// GET /events?limit=50 throughout, waits for every projection to reach the
// stream's last sequence and prints one JSON line: post rate, read p99 and
// non-200 answers during the burst, and when each projection caught up.
//
//	kiln-burst -url http://127.0.0.1:8080 -nats nats://127.0.0.1:4222
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kilnhq/kiln/loadtest/internal/burst"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kiln-burst:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := burst.Options{Log: slog.New(slog.NewTextHandler(stderr, nil)).With("tool", "kiln-burst")}
	fs := flag.NewFlagSet("kiln-burst", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:8080", "Kiln base URL")
	fs.StringVar(&o.NATSURL, "nats", "nats://127.0.0.1:4222", "NATS server of Kiln's EVENTS stream")
	fs.StringVar(&o.APIKey, "api-key", os.Getenv("KILN_API_KEY"), "API key (default $KILN_API_KEY)")
	fs.IntVar(&o.Events, "events", 1_000_000, "events to post")
	fs.IntVar(&o.Batch, "batch", 1000, "events per request")
	fs.IntVar(&o.Clients, "clients", 8, "concurrent posters")
	fs.IntVar(&o.Readers, "readers", 2, "concurrent GET /events?limit=50 readers during the burst")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Second, "per request")
	fs.DurationVar(&o.CatchUp, "catch-up", 30*time.Minute, "longest wait for the projections to catch up")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Events < 1 || o.Batch < 1 || o.Batch > 100_000 || o.Clients < 1 || o.Readers < 1 {
		return fmt.Errorf("-events, -batch (≤100000), -clients and -readers must be positive")
	}
	res, err := burst.Run(ctx, o)
	if b, merr := json.Marshal(res); merr == nil {
		fmt.Fprintln(stdout, string(b))
	}
	return err
}
