package scenario_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/loadtest/internal/scenario"
	"github.com/kilnhq/kiln/testsupport"
)

// startKiln runs NATS and an ingest service in-process and returns the
// HTTP base URL and the NATS URL.
func startKiln(t *testing.T) (string, string) {
	t.Helper()
	ns := testsupport.StartNATS(t)
	cfg, err := ingest.LoadConfig(map[string]string{"NATS_URL": ns.URL()})
	if err != nil {
		t.Fatal(err)
	}
	log := testsupport.Logger(t)
	nc, err := connect.NATS(ns.URL(), t.Name(), connect.Append, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	svc, err := ingest.New(context.Background(), cfg, ingest.Deps{NATS: nc, Metrics: httpserver.NewRegistry(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: cfg.MaxBodyBytes, Log: log})
	svc.Register(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpserver.ServeListener(ctx, app, ln, 5*time.Second, log) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + ln.Addr().String(), ns.URL()
}

// TestScenariosAgainstInProcessKiln runs every scenario briefly. Set
// KILN_LOAD_DURATION (e.g. 10s) and KILN_LOAD_SCENARIOS to profile ingest
// under load with go test -cpuprofile.
func TestScenariosAgainstInProcessKiln(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	httpURL, natsURL := startKiln(t)
	duration := time.Second
	if d, err := time.ParseDuration(os.Getenv("KILN_LOAD_DURATION")); err == nil {
		duration = d
	}
	// Only the ingest scenarios by default: the others need the read
	// models (pipeline_test.go runs them against a standalone).
	names := []string{scenario.IngestBatch, scenario.IngestSingle, scenario.IngestLatency}
	if list := os.Getenv("KILN_LOAD_SCENARIOS"); list != "" {
		var err error
		if names, err = scenario.ParseNames(list); err != nil {
			t.Fatal(err)
		}
	}
	cfg := scenario.Config{
		URL: httpURL, NATSURL: natsURL, Duration: duration, Warmup: 200 * time.Millisecond,
		Timeout: 5 * time.Second, Clients: 8, Batch: 100, Rate: 500, Workers: 32, Scenarios: names,
	}
	var out bytes.Buffer
	if err := scenario.Run(context.Background(), cfg, &out, testsupport.LoggerLevel(t, slog.LevelInfo)); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		scenario.IngestBatch:   {"events_per_s", "baseline_events_per_s", "ratio"},
		scenario.IngestSingle:  {"req_per_s", "baseline_events_per_s", "ratio", "p50_ms"},
		scenario.IngestLatency: {"offered_events_per_s", "achieved_events_per_s", "p50_ms", "max_ms", "baseline_p99_ms"},
	}
	sc := bufio.NewScanner(&out)
	var got []string
	for sc.Scan() {
		t.Logf("%s", sc.Bytes())
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON line: %s: %v", sc.Bytes(), err)
		}
		bench, _ := line["bench"].(string)
		got = append(got, bench)
		for _, key := range append(want[bench], "p99_ms") {
			if v, ok := line[key].(float64); !ok || v <= 0 {
				t.Errorf("%s: %s = %v, want a positive number", bench, key, line[key])
			}
		}
		// Errors are reported, not asserted: under a loaded CI machine
		// ingest may rightly answer 503 when JetStream acks are slow.
		if v, ok := line["errors"].(float64); !ok || v < 0 {
			t.Errorf("%s: errors = %v, want a count", bench, line["errors"])
		}
	}
	if len(got) != len(names) {
		t.Fatalf("benches %v, want one line per scenario %v", got, names)
	}
	for i := range names {
		if got[i] != names[i] {
			t.Errorf("line %d is %s, want %s", i, got[i], names[i])
		}
	}
}
