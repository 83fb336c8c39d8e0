package scenario_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	"github.com/kilnhq/kiln/loadtest/internal/scenario"
	"github.com/kilnhq/kiln/testsupport"
)

// TestPipelineScenariosAgainstStandalone runs the scenarios past ingest
// (and ingest_types, which registers schemas through the gateway's API)
// briefly against a standalone and checks the shape of their lines, not
// their numbers. notifier_eval is left out: package notifiereval runs
// it.
func TestPipelineScenariosAgainstStandalone(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	kiln := standalonetest.Start(t, t.TempDir())
	cfg := scenario.Config{
		URL: kiln.Base, NATSURL: kiln.NATSURL, MongoURL: kiln.MongoURI, MongoDatabase: "kiln", RedisURL: kiln.RedisURL,
		Duration: 500 * time.Millisecond, Warmup: 200 * time.Millisecond, Timeout: 10 * time.Second,
		Clients: 4, Batch: 10, Rate: 100, Workers: 8, ProjBatch: 100, ReplayEvents: 500, Settle: 30 * time.Second,
		Scenarios: []string{scenario.IngestTypes, scenario.ProjectorThroughput, scenario.E2EVisible, scenario.ReplayRate},
	}
	var out bytes.Buffer
	if err := scenario.Run(context.Background(), cfg, &out, testsupport.LoggerLevel(t, slog.LevelInfo)); err != nil {
		t.Fatal(err)
	}
	type want struct {
		bench, store string
		positive     []string
	}
	store := []string{"events_per_s", "baseline_events_per_s", "ratio", "events"}
	typed := []string{"events_per_s", "baseline_events_per_s", "ratio", "types"}
	wants := []want{
		{scenario.IngestTypesBatch, "", typed},
		{scenario.IngestTypesSingle, "", typed},
		{scenario.ProjectorThroughput, "redis", store},
		{scenario.ProjectorThroughput, "mongo", store},
		{scenario.E2EVisible, "", []string{"p50_ms", "p99_ms", "probes", "achieved_events_per_s"}},
		{scenario.ProjectionLag, "", []string{"samples"}},
		{scenario.ReplayRate, "redis", store},
		{scenario.ReplayRate, "mongo", store},
	}
	sc := bufio.NewScanner(&out)
	i := 0
	for ; sc.Scan(); i++ {
		t.Logf("%s", sc.Bytes())
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON line: %s: %v", sc.Bytes(), err)
		}
		if i >= len(wants) {
			continue
		}
		w := wants[i]
		if line["bench"] != w.bench || (w.store != "" && line["store"] != w.store) {
			t.Errorf("line %d is %v/%v, want %s/%s", i, line["bench"], line["store"], w.bench, w.store)
		}
		for _, key := range w.positive {
			if v, ok := line[key].(float64); !ok || v <= 0 {
				t.Errorf("%s %s: %s = %v, want a positive number", w.bench, w.store, key, line[key])
			}
		}
		if v, ok := line["errors"].(float64); ok && v != 0 && w.bench == scenario.E2EVisible {
			t.Errorf("%s: %v probes failed", w.bench, v)
		}
	}
	if i != len(wants) {
		t.Errorf("%d lines, want %d", i, len(wants))
	}
}
