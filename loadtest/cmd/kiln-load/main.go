// Command kiln-load benchmarks a running Kiln: it drives POST /events over
// HTTP and, in the same run, measures raw JetStream publishing against the
// NATS server Kiln stores into, then prints one JSON line per scenario on
// stdout. Progress goes to stderr.
//
//	kiln-load -url http://127.0.0.1:8080 -nats nats://127.0.0.1:4222 -duration 10s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kilnhq/kiln/loadtest/internal/scenario"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "kiln-load:", err)
		os.Exit(1)
	}
}

// run parses args, runs the scenarios and writes their result lines to
// stdout; logs and usage go to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("tool", "kiln-load")
	return scenario.Run(ctx, cfg, stdout, log)
}

// parseFlags turns the command line into a validated scenario.Config.
func parseFlags(args []string, stderr io.Writer) (scenario.Config, error) {
	var cfg scenario.Config
	fs := flag.NewFlagSet("kiln-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "Kiln base URL (POST <url>/events)")
	fs.StringVar(&cfg.NATSURL, "nats", "nats://127.0.0.1:4222", "NATS server Kiln stores into; the baseline publishes here")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured duration of each load phase (Kiln, then baseline)")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured warm-up before each load phase")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "timeout of each request and publish")
	fs.IntVar(&cfg.Clients, "clients", 64, "concurrent clients of ingest_batch and ingest_single")
	fs.IntVar(&cfg.Batch, "batch", 100, "events per ingest_batch request")
	fs.Float64Var(&cfg.Rate, "rate", 5000, "ingest_latency offered rate, events/s")
	fs.IntVar(&cfg.Rounds, "rounds", 1, "ingest scenarios: alternate the Kiln and baseline phases this many times "+
		"(each -duration long) and sum each side")
	fs.IntVar(&cfg.Workers, "workers", 256, "ingest_latency worker pool (and connections)")
	fs.StringVar(&cfg.APIKey, "api-key", os.Getenv("KILN_API_KEY"), "API key sent as a bearer token (default $KILN_API_KEY)")
	fs.StringVar(&cfg.AdminKey, "admin-key", os.Getenv("KILN_ADMIN_KEY"), "admin key ingest_types registers its "+
		"schemas with (default $KILN_ADMIN_KEY)")
	fs.BoolVar(&cfg.KeepBaseline, "keep-baseline", false, "keep the baseline's messages instead of purging "+
		"their subject after each baseline phase")
	fs.BoolVar(&cfg.PurgeIngested, "purge-ingested", false, "purge the posted events' subjects (events.page_view, events.benchtypes.>) "+
		"after each Kiln phase; only for throwaway deployments")
	fs.DurationVar(&cfg.Settle, "settle", 0, "before each phase, wait up to this long for Kiln's projections "+
		"(durable consumers of EVENTS) to catch up; 0 does not wait")
	fs.StringVar(&cfg.MongoURL, "mongo", "mongodb://127.0.0.1:27017", "MongoDB Kiln's read models live in "+
		"(projector_throughput and replay_rate write scratch collections there; replay_rate rebuilds the history)")
	fs.StringVar(&cfg.MongoDatabase, "mongo-db", "kiln", "database of Kiln's read models")
	fs.StringVar(&cfg.RedisURL, "redis", "redis://127.0.0.1:6379/0", "Redis of Kiln's counters "+
		"(projector_throughput writes keys under kilnbench:; replay_rate rebuilds the counters)")
	fs.IntVar(&cfg.ProjBatch, "proj-batch", 500, "events per Apply call in projector_throughput (PROJECTOR_BATCH_SIZE)")
	fs.IntVar(&cfg.ReplayEvents, "replay-events", 50_000, "events replay_rate publishes to the stream before replaying it")
	fs.IntVar(&cfg.ReadClients, "read-clients", 64, "connections of read_events and read_metrics")
	fs.IntVar(&cfg.ReadPreload, "read-preload", 100_000, "events read_events posts before reading (per -read-order)")
	fs.StringVar(&cfg.ReadOrder, "read-order", "both", "how read_events stamps its preloaded events: "+
		"shuffled (spread over the last hour, out of order), ordered (1 ms apart, ending now) or both (shuffled, then ordered)")
	fs.StringVar(&cfg.SSEURL, "sse-url", "", "base URL of the gateway sse_fanout's clients connect to (GET /stream); default -url")
	fs.IntVar(&cfg.SSENarrow, "sse-narrow", 2000, "sse_fanout clients following one event type each (about one event/s)")
	fs.IntVar(&cfg.SSEWide, "sse-wide", 10, "sse_fanout clients taking the whole stream")
	fs.Float64Var(&cfg.SSERate, "sse-rate", 5000, "sse_fanout offered events/s (POST /events)")
	fs.IntVar(&cfg.GatewayPID, "gateway-pid", 0, "process id of the gateway (or standalone) serving GET /stream, "+
		"for sse_fanout's memory per client (/proc/<pid>/status); 0 skips it")
	names := fs.String("scenarios", "all", "comma-separated scenarios to run: all or "+strings.Join(scenario.Names(), ","))
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: kiln-load [flags]\n\n"+
			"Benchmarks a running Kiln over HTTP against raw JetStream publishing on the\n"+
			"same NATS server. Prints one JSON line per scenario on stdout.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q; every setting is a flag (see -help)", fs.Args())
	}
	scenarios, err := scenario.ParseNames(*names)
	if err != nil {
		return cfg, err
	}
	cfg.Scenarios = scenarios
	return cfg, cfg.Validate()
}
