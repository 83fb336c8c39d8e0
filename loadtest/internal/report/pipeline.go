package report

// The lines of the scenarios past ingest: the projections, visibility of
// an event in the read API, the projections' lag, replay and the notifier's
// rule evaluation.

// Store is a projector_throughput or replay_rate line: Kiln's code writing
// one store ("redis" or "mongo"), against the raw write named in Baseline
// of the same events to the same store, measured in the same run.
type Store struct {
	Bench              string `json:"bench"`
	Store              string `json:"store"`
	EventsPerS         Rate   `json:"events_per_s"`
	BaselineEventsPerS Rate   `json:"baseline_events_per_s"`
	Ratio              Ratio  `json:"ratio"`
	Baseline           string `json:"baseline"`
	Events             int    `json:"events"`
	Batch              int    `json:"batch"`
}

// Visible is the e2e_visible_ms line: from a probe's 202 Accepted to the
// first GET /events/{id} that finds it, while single events are offered in
// the background at OfferedEventsPerS. Errors counts failed or timed-out
// probes, BackgroundErrors failed or never-sent background posts; the
// latencies are null when no probe became visible.
type Visible struct {
	Bench              string `json:"bench"`
	OfferedEventsPerS  Rate   `json:"offered_events_per_s"`
	AchievedEventsPerS Rate   `json:"achieved_events_per_s"`
	P50Ms              Millis `json:"p50_ms"`
	P99Ms              Millis `json:"p99_ms"`
	MaxMs              Millis `json:"max_ms"`
	Probes             int    `json:"probes"`
	Errors             int64  `json:"errors"`
	BackgroundErrors   int64  `json:"background_errors"`
}

// Lag is the projection_lag line, sampled during the e2e_visible_ms load:
// per sample, the age of the oldest stream message a projection has not
// applied yet; P50Ms… take the larger of the projections per sample.
type Lag struct {
	Bench             string `json:"bench"`
	OfferedEventsPerS Rate   `json:"offered_events_per_s"`
	P50Ms             Millis `json:"p50_ms"`
	P99Ms             Millis `json:"p99_ms"`
	MaxMs             Millis `json:"max_ms"`
	HistoryP99Ms      Millis `json:"history_p99_ms"`
	CountersP99Ms     Millis `json:"counters_p99_ms"`
	Samples           int    `json:"samples"`
	Errors            int64  `json:"errors"`
}

// Notifier is the notifier_eval line: events/s decoded and evaluated
// against Rules rules, against the same events with no rules.
type Notifier struct {
	Bench              string `json:"bench"`
	EventsPerS         Rate   `json:"events_per_s"`
	BaselineEventsPerS Rate   `json:"baseline_events_per_s"`
	Ratio              Ratio  `json:"ratio"`
	Rules              int    `json:"rules"`
	DecisionsPerEvent  Ratio  `json:"decisions_per_event"`
}
