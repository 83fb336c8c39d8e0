package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"testing"
)

func TestLinesHaveFixedKeysAndRounding(t *testing.T) {
	t.Parallel()
	p99 := Millis(1.23456)
	tests := []struct {
		name string
		line any
		want string
	}{
		{"batch", Batch{Bench: "ingest_batch", EventsPerS: 51234.56, BaselineEventsPerS: 98765.44,
			Ratio: 0.518749, P99Ms: 12.34567, Clients: 64, Batch: 100, Errors: 2},
			`{"bench":"ingest_batch","events_per_s":51234.6,"baseline_events_per_s":98765.4,"ratio":0.519,"p99_ms":12.346,"clients":64,"batch":100,"errors":2}`},
		{"single", Single{Bench: "ingest_single", ReqPerS: 15000, BaselineEventsPerS: 30000, Ratio: 0.5,
			P50Ms: 2, P99Ms: 9.9999, Clients: 64},
			`{"bench":"ingest_single","req_per_s":15000,"baseline_events_per_s":30000,"ratio":0.5,"p50_ms":2,"p99_ms":10,"clients":64,"errors":0}`},
		{"latency without baseline", Latency{Bench: "ingest_latency", OfferedEventsPerS: 5000,
			AchievedEventsPerS: 4999.96, P50Ms: 0.4321, P99Ms: 3.2, MaxMs: 41},
			`{"bench":"ingest_latency","offered_events_per_s":5000,"achieved_events_per_s":5000,"p50_ms":0.432,"p99_ms":3.2,"max_ms":41,"errors":0}`},
		{"latency with baseline", Latency{Bench: "ingest_latency", OfferedEventsPerS: 5000, BaselineP99Ms: &p99},
			`{"bench":"ingest_latency","offered_events_per_s":5000,"achieved_events_per_s":0,"p50_ms":0,"p99_ms":0,"max_ms":0,"errors":0,"baseline_p99_ms":1.235}`},
		{"read with healthz", Read{Bench: "read_events", Shape: "type", Timestamps: "shuffled over 1h", Value: 6000, Unit: "req/s",
			Baseline: 12000, Ratio: 0.5, Clients: 64}.WithHealthz(15000),
			`{"bench":"read_events","shape":"type","timestamps":"shuffled over 1h","value":6000,"unit":"req/s","baseline":12000,"ratio":0.5,"healthz_req_per_s":15000,"healthz_ratio":0.4,"p50_ms":0,"p99_ms":0,"clients":64,"errors":0}`},
		{"no baseline ratio is null", Batch{Bench: "ingest_batch", Ratio: Ratio(math.NaN()), EventsPerS: Rate(math.Inf(1))},
			`{"bench":"ingest_batch","events_per_s":null,"baseline_events_per_s":0,"ratio":null,"p99_ms":0,"clients":0,"batch":0,"errors":0}`},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := Write(&buf, tt.line); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := buf.String(); got != tt.want+"\n" {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
		if !json.Valid(bytes.TrimSpace(buf.Bytes())) {
			t.Errorf("%s: not valid JSON", tt.name)
		}
	}
}

func TestAppendRounded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v      float64
		places int
		want   string
	}{
		{0, 3, "0"},
		{-0.0001, 3, "0"},
		{2.5, 0, "3"},
		{1e9 + 0.05, 1, "1000000000.1"},
		{0.1 + 0.2, 3, "0.3"},
		{math.NaN(), 1, "null"},
		{math.Inf(-1), 1, "null"},
	}
	for _, tt := range tests {
		if got := string(appendRounded(nil, tt.v, tt.places)); got != tt.want {
			t.Errorf("appendRounded(%v, %d) = %s, want %s", tt.v, tt.places, got, tt.want)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteReportsErrors(t *testing.T) {
	t.Parallel()
	if err := Write(failingWriter{}, Batch{}); err == nil {
		t.Error("Write to a failing writer succeeded")
	}
	if err := Write(&bytes.Buffer{}, func() {}); err == nil {
		t.Error("Write of an unencodable value succeeded")
	}
}
