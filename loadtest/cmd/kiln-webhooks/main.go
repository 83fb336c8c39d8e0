// Command kiln-webhooks prints the webhook benchmarks as JSON lines:
// webhook_verify (in process) and webhook_dispatch (against a running
// Kiln, e.g. the standalone bench.sh starts).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kilnhq/kiln/loadtest/internal/webhookbench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kiln-webhooks:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("kiln-webhooks", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "Kiln's public HTTP base")
	admin := fs.String("admin-url", "http://127.0.0.1:9100", "Kiln's admin listener (metrics)")
	adminKey := fs.String("admin-key", os.Getenv("KILN_ADMIN_KEY"), "an admin key, if KILN_ADMIN_KEYS is set")
	ingestKey := fs.String("ingest-key", os.Getenv("KILN_INGEST_KEY"), "an ingest key, if KILN_INGEST_KEYS is set")
	endpoints := fs.Int("endpoints", 200, "webhook_dispatch: endpoints")
	events := fs.Int("events", 1000, "webhook_dispatch: events, each delivered to every endpoint")
	timeout := fs.Duration("timeout", 5*time.Minute, "webhook_dispatch: give up after")
	conc := fs.Int("concurrency", 64, "webhook_dispatch baseline: connections of the direct sender")
	verifyFor := fs.Duration("verify-duration", 3*time.Second, "webhook_verify: duration of each half")
	only := fs.String("only", "", "run only this bench (webhook_verify or webhook_dispatch)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	if *only == "" || *only == "webhook_verify" {
		if err := enc.Encode(webhookbench.Verify(*verifyFor, 1024)); err != nil {
			return err
		}
	}
	if *only == "" || *only == "webhook_dispatch" {
		res, err := webhookbench.Dispatch(ctx, webhookbench.DispatchConfig{
			URL: *url, AdminURL: *admin, AdminKey: *adminKey, IngestKey: *ingestKey,
			Endpoints: *endpoints, Events: *events, Timeout: *timeout, Concurrency: *conc,
		})
		if err != nil {
			return fmt.Errorf("webhook_dispatch: %w", err)
		}
		return enc.Encode(res)
	}
	return nil
}
