package scenario

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"", Names(), ""},
		{"all", Names(), ""},
		{" ingest_latency , ingest_batch ", []string{IngestBatch, IngestLatency}, ""},
		{"ingest_single,ingest_single,", []string{IngestSingle}, ""},
		{"ingest_bulk", nil, `unknown scenario "ingest_bulk"`},
		{",,", nil, "name at least one"},
	}
	for _, tt := range tests {
		got, err := ParseNames(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseNames(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseNames(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func valid() Config {
	return Config{
		URL: "http://127.0.0.1:8080", NATSURL: "nats://127.0.0.1:4222",
		Duration: 10 * time.Second, Warmup: time.Second, Timeout: 5 * time.Second,
		Clients: 64, Batch: 100, Rate: 5000, Workers: 256, Rounds: 1, Scenarios: Names(),
		MongoURL: "mongodb://127.0.0.1:27017", MongoDatabase: "kiln", RedisURL: "redis://127.0.0.1:6379/0",
		ProjBatch: 500, ReplayEvents: 50_000,
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	if err := valid().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.URL = "127.0.0.1:8080" }, "-url"},
		{func(c *Config) { c.URL = "ftp://host" }, "-url"},
		{func(c *Config) { c.NATSURL = "http://127.0.0.1:4222" }, "-nats"},
		{func(c *Config) { c.NATSURL = "%zz" }, "-nats"},
		{func(c *Config) { c.Duration = 50 * time.Millisecond }, "-duration"},
		{func(c *Config) { c.Warmup = -time.Second }, "-warmup"},
		{func(c *Config) { c.Timeout = 0 }, "-timeout"},
		{func(c *Config) { c.Settle = -time.Second }, "-settle"},
		{func(c *Config) { c.Clients = 0 }, "-clients"},
		{func(c *Config) { c.Batch = 0 }, "-batch"},
		{func(c *Config) { c.Rate = 0 }, "-rate"},
		{func(c *Config) { c.Workers = 20_000 }, "-workers"},
		{func(c *Config) { c.Rounds = -1 }, "-rounds"},
		{func(c *Config) { c.Rounds = 101 }, "-rounds"},
		{func(c *Config) { c.Scenarios = nil }, "-scenarios"},
		{func(c *Config) { c.MongoURL = "127.0.0.1:27017" }, "-mongo"},
		{func(c *Config) { c.MongoDatabase = "" }, "-mongo-db"},
		{func(c *Config) { c.RedisURL = "http://127.0.0.1:6379" }, "-redis"},
		{func(c *Config) { c.ProjBatch = 0 }, "-proj-batch"},
		{func(c *Config) { c.ReplayEvents = -1 }, "-replay-events"},
		{func(c *Config) { c.ReadOrder = "sorted" }, "-read-order"},
	}
	for _, tt := range tests {
		c := valid()
		tt.mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("want an error naming %s, got %v", tt.want, err)
		}
	}
	c := valid()
	c.Scenarios, c.MongoURL, c.RedisURL, c.ProjBatch = []string{IngestBatch}, "", "", 0
	if err := c.Validate(); err != nil {
		t.Errorf("the ingest scenarios need no store flags: %v", err)
	}
	c = valid()
	c.Clients, c.Batch = 0, 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "-clients") || !strings.Contains(err.Error(), "-batch") {
		t.Errorf("every bad flag is reported: %v", err)
	}
}
