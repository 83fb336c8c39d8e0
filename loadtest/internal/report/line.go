// Package report encodes scenario results as the one-line JSON documents
// kiln-load prints on stdout, with fixed key order and rounded numbers.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Rate is events or requests per second, encoded with one decimal.
type Rate float64

// Millis is a latency in milliseconds, encoded with three decimals.
type Millis float64

// Ratio is a dimensionless ratio, encoded with three decimals.
type Ratio float64

// MarshalJSON encodes the rate with one decimal; NaN and ±Inf become null.
func (r Rate) MarshalJSON() ([]byte, error) { return appendRounded(nil, float64(r), 1), nil }

// MarshalJSON encodes the latency with three decimals; NaN and ±Inf become null.
func (m Millis) MarshalJSON() ([]byte, error) { return appendRounded(nil, float64(m), 3), nil }

// MarshalJSON encodes the ratio with three decimals; NaN and ±Inf become null.
func (r Ratio) MarshalJSON() ([]byte, error) { return appendRounded(nil, float64(r), 3), nil }

// appendRounded appends v rounded to the given decimal places, without
// trailing zeros (12.5, not 12.500), or null when v is not finite.
func appendRounded(b []byte, v float64, places int) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	scale := math.Pow10(places)
	v = math.Round(v*scale) / scale
	if v == 0 {
		v = 0 // no "-0"
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// Batch is the ingest_batch line.
type Batch struct {
	Bench              string `json:"bench"`
	EventsPerS         Rate   `json:"events_per_s"`
	BaselineEventsPerS Rate   `json:"baseline_events_per_s"`
	Ratio              Ratio  `json:"ratio"`
	P99Ms              Millis `json:"p99_ms"`
	Clients            int    `json:"clients"`
	Batch              int    `json:"batch"`
	Errors             int64  `json:"errors"`
	// Rounds is how many times the Kiln and baseline phases alternated.
	Rounds int `json:"rounds,omitempty"`
}

// Types is an ingest_types line (batch or single): the scenario with
// events spread over 50 types registered at runtime, its baseline the same
// scenario with the built-in page_view events, same run.
type Types struct {
	Bench              string `json:"bench"`
	EventsPerS         Rate   `json:"events_per_s"`
	BaselineEventsPerS Rate   `json:"baseline_events_per_s"`
	Ratio              Ratio  `json:"ratio"`
	P99Ms              Millis `json:"p99_ms"`
	BaselineP99Ms      Millis `json:"baseline_p99_ms"`
	Types              int    `json:"types"`
	Clients            int    `json:"clients"`
	Batch              int    `json:"batch"`
	Errors             int64  `json:"errors"`
	Rounds             int    `json:"rounds,omitempty"`
}

// Single is the ingest_single line.
type Single struct {
	Bench              string `json:"bench"`
	ReqPerS            Rate   `json:"req_per_s"`
	BaselineEventsPerS Rate   `json:"baseline_events_per_s"`
	Ratio              Ratio  `json:"ratio"`
	P50Ms              Millis `json:"p50_ms"`
	P99Ms              Millis `json:"p99_ms"`
	Clients            int    `json:"clients"`
	Errors             int64  `json:"errors"`
	Rounds             int    `json:"rounds,omitempty"`
}

// Latency is the ingest_latency line. BaselineP99Ms is left out when no
// baseline was measured.
type Latency struct {
	Bench              string  `json:"bench"`
	OfferedEventsPerS  Rate    `json:"offered_events_per_s"`
	AchievedEventsPerS Rate    `json:"achieved_events_per_s"`
	P50Ms              Millis  `json:"p50_ms"`
	P99Ms              Millis  `json:"p99_ms"`
	MaxMs              Millis  `json:"max_ms"`
	Errors             int64   `json:"errors"`
	BaselineP99Ms      *Millis `json:"baseline_p99_ms,omitempty"`
	Rounds             int     `json:"rounds,omitempty"`
}

// Write encodes line as compact JSON followed by a newline, in one Write
// call so concurrent writers never interleave within a line.
func Write(w io.Writer, line any) error {
	b, err := json.Marshal(line)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// Read is a read_events (one line per query shape and timestamp order) or
// read_metrics line: requests/s against the same-shape raw Redis commands'
// operations/s, and against GET /healthz in the same run.
type Read struct {
	Bench string `json:"bench"`
	Shape string `json:"shape,omitempty"`
	// Timestamps says how the preloaded events were stamped: "in order"
	// or "shuffled over 1h".
	Timestamps   string `json:"timestamps,omitempty"`
	Value        Rate   `json:"value"`
	Unit         string `json:"unit"`
	Baseline     Rate   `json:"baseline"`
	Ratio        Ratio  `json:"ratio"`
	HealthzPerS  Rate   `json:"healthz_req_per_s"`
	HealthzRatio Ratio  `json:"healthz_ratio"`
	P50Ms        Millis `json:"p50_ms"`
	P99Ms        Millis `json:"p99_ms"`
	CacheShare   *Ratio `json:"cache_share,omitempty"`
	Clients      int    `json:"clients"`
	Errors       int64  `json:"errors"`
}

// WithHealthz sets the GET /healthz rate (req/s) and the line's ratio to it.
func (r Read) WithHealthz(rate float64) Read {
	r.HealthzPerS = Rate(rate)
	r.HealthzRatio = Ratio(math.NaN())
	if rate > 0 {
		r.HealthzRatio = Ratio(float64(r.Value) / rate)
	}
	return r
}
