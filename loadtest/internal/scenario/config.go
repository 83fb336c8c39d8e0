// Package scenario runs kiln-load's benchmarks against a running Kiln and
// the NATS server behind it, and prints one JSON result line per scenario.
package scenario

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Scenario names, in the order they run.
const (
	IngestBatch   = "ingest_batch"
	IngestSingle  = "ingest_single"
	IngestLatency = "ingest_latency"
	// IngestTypes prints the IngestTypesBatch and IngestTypesSingle lines.
	IngestTypes       = "ingest_types"
	IngestTypesBatch  = "ingest_types_batch"
	IngestTypesSingle = "ingest_types_single"
	// ProjectorThroughput prints one line per store (redis, mongo).
	ProjectorThroughput = "projector_throughput"
	// E2EVisible also prints the ProjectionLag line, sampled under its load.
	E2EVisible   = "e2e_visible_ms"
	ReplayRate   = "replay_rate"
	NotifierEval = "notifier_eval"
)

// ReadEvents and ReadMetrics are in reads.go.

// ProjectionLag is the bench of the second line E2EVisible prints.
const ProjectionLag = "projection_lag"

// SSEFanout is the live stream's fan-out (package ssefanout).
const SSEFanout = "sse_fanout"

// Names lists every scenario in run order.
func Names() []string {
	return []string{IngestBatch, IngestSingle, IngestLatency, IngestTypes,
		ProjectorThroughput, E2EVisible, ReplayRate, NotifierEval, SSEFanout, ReadEvents, ReadMetrics}
}

// Config is one kiln-load run.
type Config struct {
	URL      string        // Kiln's base URL
	NATSURL  string        // the NATS server Kiln stores into
	Duration time.Duration // measured time of each load phase
	Warmup   time.Duration // unmeasured lead-in of each load phase
	Timeout  time.Duration // per request / publish
	Clients  int           // concurrent clients of the closed-loop scenarios
	Batch    int           // events per ingest_batch request
	Rate     float64       // ingest_latency offered events per second
	Workers  int           // ingest_latency worker pool
	APIKey   string        // sent as a bearer token when set
	AdminKey string        // sent as a bearer token by the admin calls (ingest_types' schema pushes) when set
	// Rounds is how many times the ingest scenarios alternate their Kiln
	// phase and their baseline phase (each -duration long); the line sums
	// the rounds of each side; 0 is 1. More rounds with a shorter -duration keep a
	// machine whose load drifts from favouring one side.
	Rounds    int
	Scenarios []string // which scenarios, in run order
	// KeepBaseline leaves the baseline's messages in the stream instead of
	// purging its subject after each baseline phase.
	KeepBaseline bool
	// PurgeIngested purges the posted events' subject after each Kiln
	// phase. Only for throwaway deployments: it deletes every event of
	// that type.
	PurgeIngested bool
	// Settle is how long to wait before each phase for Kiln's projections
	// (durable consumers of EVENTS) to catch up; 0 does not wait.
	Settle time.Duration
	// sse_fanout: narrow clients (one event type each, about one event/s),
	// wide clients (the whole stream), the offered events/s, and the
	// process serving GET /stream whose memory is read (0: not measured).
	SSEURL     string // where the sse_fanout clients connect; "" is URL
	SSENarrow  int
	SSEWide    int
	SSERate    float64
	GatewayPID int
	// The read models' stores, for projector_throughput and replay_rate.
	MongoURL      string
	MongoDatabase string
	RedisURL      string
	ProjBatch     int // events per Apply call in projector_throughput
	ReplayEvents  int // events replay_rate adds to the stream before replaying it
	// read_events and read_metrics: connections (0: 64), and events posted first.
	ReadClients int
	ReadPreload int
	// ReadOrder is how read_events stamps them: ReadShuffled, ReadOrdered
	// or "both" ("": both).
	ReadOrder string
}

// Validate reports the first invalid setting, named as its flag.
func (c Config) Validate() error {
	var errs []error
	check := func(bad bool, format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	u, err := url.Parse(c.URL)
	check(err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "",
		"-url %q: want an absolute http:// or https:// URL such as http://127.0.0.1:8080", c.URL)
	n, err := url.Parse(c.NATSURL)
	check(err != nil || (n.Scheme != "nats" && n.Scheme != "tls") || n.Host == "",
		"-nats %q: want a nats:// or tls:// URL such as nats://127.0.0.1:4222", c.NATSURL)
	check(c.Duration < 100*time.Millisecond, "-duration %s: must be at least 100ms", c.Duration)
	check(c.Warmup < 0, "-warmup %s: must not be negative", c.Warmup)
	check(c.Settle < 0, "-settle %s: must not be negative", c.Settle)
	check(c.Timeout < time.Millisecond, "-timeout %s: must be at least 1ms", c.Timeout)
	check(c.Clients < 1 || c.Clients > 10_000, "-clients %d: must be between 1 and 10000", c.Clients)
	check(c.Batch < 1 || c.Batch > 100_000, "-batch %d: must be between 1 and 100000", c.Batch)
	check(!(c.Rate >= 1 && c.Rate <= 1_000_000), "-rate %g: must be between 1 and 1000000 events/s", c.Rate)
	check(c.Rounds < 0 || c.Rounds > 100, "-rounds %d: must be between 1 and 100", c.Rounds)
	check(c.Workers < 1 || c.Workers > 10_000, "-workers %d: must be between 1 and 10000", c.Workers)
	check(c.ReadClients < 0 || c.ReadClients > 10_000, "-read-clients %d: must be between 1 and 10000", c.ReadClients)
	check(c.ReadPreload < 0 || c.ReadPreload > 10_000_000, "-read-preload %d: must be between 0 and 10000000", c.ReadPreload)
	check(!slices.Contains([]string{"", ReadShuffled, ReadOrdered, "both"}, c.ReadOrder),
		"-read-order %q: want %s, %s or both", c.ReadOrder, ReadShuffled, ReadOrdered)
	if slices.ContainsFunc(c.Scenarios, func(s string) bool {
		return s == ProjectorThroughput || s == ReplayRate || s == ReadEvents || s == ReadMetrics
	}) {
		m, err := url.Parse(c.MongoURL)
		check(err != nil || (m.Scheme != "mongodb" && m.Scheme != "mongodb+srv") || m.Host == "",
			"-mongo %q: want a mongodb:// URL such as mongodb://127.0.0.1:27017", c.MongoURL)
		check(c.MongoDatabase == "", "-mongo-db: must not be empty")
		rd, err := url.Parse(c.RedisURL)
		check(err != nil || (rd.Scheme != "redis" && rd.Scheme != "rediss") || rd.Host == "",
			"-redis %q: want a redis:// URL such as redis://127.0.0.1:6379/0", c.RedisURL)
	}
	check(slices.Contains(c.Scenarios, ProjectorThroughput) && (c.ProjBatch < 1 || c.ProjBatch > 10_000),
		"-proj-batch %d: must be between 1 and 10000", c.ProjBatch)
	check(c.ReplayEvents < 0 || c.ReplayEvents > 1_000_000, "-replay-events %d: must be between 0 and 1000000", c.ReplayEvents)
	check(len(c.Scenarios) == 0, "-scenarios: name at least one of %s", strings.Join(Names(), ", "))
	return errors.Join(errs...)
}

// ParseNames parses a comma-separated scenario list; "all" or "" selects
// every scenario. The result is in run order, without repeats.
func ParseNames(list string) ([]string, error) {
	list = strings.TrimSpace(list)
	if list == "" || list == "all" {
		return Names(), nil
	}
	want := map[string]bool{}
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(Names(), name) {
			return nil, fmt.Errorf("-scenarios: unknown scenario %q; known: %s", name, strings.Join(Names(), ", "))
		}
		want[name] = true
	}
	var names []string
	for _, name := range Names() {
		if want[name] {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("-scenarios %q: name at least one of %s", list, strings.Join(Names(), ", "))
	}
	return names, nil
}
