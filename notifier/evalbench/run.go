// Package evalbench measures the notifier's rule evaluation: stored
// envelopes decoded and evaluated against 100 rules, against a baseline of
// the same envelopes decoded and evaluated against no rules. Both run on one
// goroutine, as the notifier's consumer does. The load tool and
// cmd/notifier-bench print its Result as one JSON line.
package evalbench

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/kilnhq/kiln/notifier/internal/evaluate"
	"github.com/kilnhq/kiln/schemas"
)

// Rules is the size of the measured rule set.
const Rules = 100

// rounds alternates baseline and measured runs, so drift on a noisy
// machine hits both alike.
const rounds = 4

// Result is one measurement, in the load tool's JSON line shape.
type Result struct {
	Bench              string  `json:"bench"`
	Value              float64 `json:"value"`
	Unit               string  `json:"unit"`
	Baseline           float64 `json:"baseline"`
	Ratio              float64 `json:"ratio"`
	EventsPerS         float64 `json:"events_per_s"`
	BaselineEventsPerS float64 `json:"baseline_events_per_s"`
	Rules              int     `json:"rules"`
	// DecisionsPerEvent is how often an event decided an alert.
	DecisionsPerEvent float64 `json:"decisions_per_event"`
}

// JSON is the result as one line of JSON.
func (r Result) JSON() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// Run measures for about d (at least 400ms).
func Run(d time.Duration) (Result, error) {
	w, err := NewWorkload(Rules, 1)
	if err != nil {
		return Result{}, err
	}
	return measure(w, d)
}

func measure(w *Workload, d time.Duration) (Result, error) {
	slice := max(d, 400*time.Millisecond) / (2 * rounds)
	base, withRules := &loop{w: w, eng: evaluate.New(nil)}, &loop{w: w, eng: evaluate.New(w.Rules)}
	if err := withRules.run(slice / 4); err != nil { // warm caches and windows
		return Result{}, err
	}
	base.reset()
	withRules.reset()
	for range rounds {
		if err := base.run(slice); err != nil {
			return Result{}, err
		}
		if err := withRules.run(slice); err != nil {
			return Result{}, err
		}
	}
	r := Result{Bench: "notifier_eval", Unit: "events/s", Rules: Rules,
		EventsPerS: withRules.rate(), BaselineEventsPerS: base.rate()}
	r.Value, r.Baseline = r.EventsPerS, r.BaselineEventsPerS
	if r.Baseline > 0 {
		r.Ratio = r.Value / r.Baseline
	}
	if withRules.events > 0 {
		r.DecisionsPerEvent = float64(withRules.decisions) / float64(withRules.events)
	}
	return r, nil
}

// loop consumes the corpus in a circle, the way the notifier consumes
// messages: decode the envelope, evaluate, mark decisions stored, and
// prune old windows now and then. Timestamps advance 1ms per event, so
// threshold windows roll over as in a live stream.
type loop struct {
	w         *Workload
	eng       *evaluate.Engine
	n         int // events consumed in total (drives the timestamps)
	events    int
	decisions int
	elapsed   time.Duration
}

func (l *loop) reset() { l.events, l.decisions, l.elapsed = 0, 0, 0 }

func (l *loop) rate() float64 {
	if l.elapsed <= 0 {
		return 0
	}
	return float64(l.events) / l.elapsed.Seconds()
}

func (l *loop) run(d time.Duration) error {
	start := time.Now()
	deadline := start.Add(d)
	dst := make([]evaluate.Decision, 0, 16)
	for i := 0; ; i++ {
		if i%512 == 0 && time.Now().After(deadline) {
			break
		}
		var ev schemas.Event
		if err := json.Unmarshal(l.w.Events[l.n%len(l.w.Events)], &ev); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		ev.Timestamp = 1_700_000_000_000 + int64(l.n)
		dst = l.eng.Evaluate(&ev, dst[:0])
		for _, dec := range dst {
			l.eng.MarkDecided(dec)
		}
		l.decisions += len(dst)
		l.n++
		l.events++
		if l.n%(1<<16) == 0 {
			l.eng.Prune(time.UnixMilli(ev.Timestamp))
		}
	}
	l.elapsed += time.Since(start)
	return nil
}
