package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/loadtest/internal/scenario"
)

func TestParseFlagsDefaults(t *testing.T) {
	t.Setenv("KILN_API_KEY", "")
	cfg, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.URL != "http://127.0.0.1:8080" || cfg.NATSURL != "nats://127.0.0.1:4222" ||
		cfg.Duration != 10*time.Second || cfg.Clients != 64 || cfg.Batch != 100 ||
		cfg.Rate != 5000 || cfg.Workers != 256 || !slices.Equal(cfg.Scenarios, scenario.Names()) {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestParseFlagsOverrides(t *testing.T) {
	t.Parallel()
	cfg, err := parseFlags([]string{"-url", "http://kiln:18080", "-nats", "nats://kiln:14222",
		"-duration", "2s", "-clients", "8", "-scenarios", "ingest_single"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.URL != "http://kiln:18080" || cfg.NATSURL != "nats://kiln:14222" || cfg.Duration != 2*time.Second ||
		cfg.Clients != 8 || !slices.Equal(cfg.Scenarios, []string{scenario.IngestSingle}) {
		t.Errorf("overrides: %+v", cfg)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-clients", "0"}, "-clients 0: must be between 1 and 10000"},
		{[]string{"-duration", "10"}, "invalid value"},
		{[]string{"-url", "localhost:8080"}, "-url"},
		{[]string{"-scenarios", "ingest_everything"}, `unknown scenario "ingest_everything"`},
		{[]string{"-nope"}, "flag provided but not defined"},
		{[]string{"extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tt.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("run(%q) wrote to stdout: %s", tt.args, stdout.String())
		}
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-help"}, &bytes.Buffer{}, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run(-help) = %v", err)
	}
	if !strings.Contains(stderr.String(), "-scenarios") {
		t.Errorf("usage does not list flags: %s", stderr.String())
	}
}

func TestRunFailsClearlyWithoutNATS(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"-nats", "nats://127.0.0.1:1", "-url", "http://127.0.0.1:1"},
		&stdout, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "connect to nats nats://127.0.0.1:1") {
		t.Errorf("run = %v, want a connect error", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: %s", stdout.String())
	}
}
