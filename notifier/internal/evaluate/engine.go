// Package evaluate decides, event by event, which rules fire. It is pure and
// in-memory — no I/O, no clock — and cheap: rules are indexed by event type,
// an event of a type no rule names costs a map lookup and no allocation,
// and conditions read the raw metadata JSON without decoding it.
//
// Alert ids are deterministic, so whoever stores the decisions can make
// them happen once: an `each` alert is hash(rule, event id); a `threshold`
// alert is hash(rule, group, window start).
//
// Threshold rules count in tumbling windows aligned to the Unix epoch by
// event timestamp: a 1m window covers [12:00:00.000, 12:01:00.000). Each
// (rule, group, window) keeps the ids of the events it counted, up to
// count+1, so a redelivered event is not counted twice, and the window
// decides when its count first exceeds the rule's count. Tumbling windows
// make "once per window" exact and cheap; the price is that a burst
// straddling a boundary (3 events at 12:00:59, 3 at 12:01:00 with count 5)
// does not fire.
package evaluate

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"

	"github.com/kilnhq/kiln/notifier/internal/rules"
	"github.com/kilnhq/kiln/schemas"
)

// maxCachedTypes bounds the per-event-type candidate cache.
const maxCachedTypes = 4096

// Decision is an alert a rule decided for one event.
type Decision struct {
	Rule    *rules.Rule
	AlertID string
	Window  rules.Window // threshold rules only
	key     windowKey    // threshold rules only
}

// Engine evaluates events against a rule set. It is not safe for
// concurrent use: one consumer goroutine owns it.
type Engine struct {
	rules   []*rules.Rule
	exact   map[string][]int // literal event type → rules naming it
	wild    []int            // rules with a wildcard pattern
	cache   map[string][]int // event type → candidate rules, in rule order
	scratch []int
	windows map[windowKey]*window
	fields  rules.Fields
}

// New returns an engine for set (nil or empty: nothing ever fires).
func New(set *rules.Set) *Engine {
	e := &Engine{exact: map[string][]int{}, cache: map[string][]int{}, windows: map[windowKey]*window{}}
	if set != nil {
		e.rules = set.Rules
	}
	for i, r := range e.rules {
		wild := false
		for _, p := range r.Types {
			if !p.Literal() {
				wild = true
			}
		}
		if wild {
			e.wild = append(e.wild, i)
			continue
		}
		for _, p := range r.Types {
			if l := e.exact[p.String()]; len(l) == 0 || l[len(l)-1] != i {
				e.exact[p.String()] = append(l, i)
			}
		}
	}
	return e
}

// Evaluate appends to dst the decisions ev causes and returns it. A
// threshold decision repeats for every further event of its window until
// MarkDecided is called with it, so a decision whose storing failed is
// decided again by the next event (or the redelivery).
func (e *Engine) Evaluate(ev *schemas.Event, dst []Decision) []Decision {
	return e.evaluate(ev, dst, true)
}

// Observe counts ev in the threshold windows without deciding anything. A
// restarted notifier observes the recent stream to rebuild its windows.
func (e *Engine) Observe(ev *schemas.Event) {
	e.evaluate(ev, nil, false)
}

// MarkDecided records that a threshold decision is durable (stored, or
// suppressed by throttle), so the rest of its window decides nothing.
func (e *Engine) MarkDecided(d Decision) {
	if w := e.windows[d.key]; w != nil && d.Rule != nil && d.Rule.Kind == rules.Threshold {
		w.decided = true
	}
}

func (e *Engine) evaluate(ev *schemas.Event, dst []Decision, emit bool) []Decision {
	cands := e.candidates(ev.EventType)
	if len(cands) == 0 {
		return dst
	}
	e.fields.Reset(ev)
	for _, i := range cands {
		r := e.rules[i]
		if !e.matches(r) {
			continue
		}
		if r.Kind == rules.Each {
			if emit {
				dst = append(dst, Decision{Rule: r, AlertID: EachID(r.Name, ev.ID)})
			}
			continue
		}
		if d, ok := e.count(i, r, ev); ok && emit {
			dst = append(dst, d)
		}
	}
	return dst
}

func (e *Engine) matches(r *rules.Rule) bool {
	for j := range r.Conds {
		if !r.Conds[j].Match(&e.fields) {
			return false
		}
	}
	return true
}

// candidates returns the rules whose type patterns match eventType.
func (e *Engine) candidates(eventType string) []int {
	if c, ok := e.cache[eventType]; ok {
		return c
	}
	exact := e.exact[eventType]
	if len(e.wild) == 0 {
		return exact
	}
	out := e.scratch[:0]
	if len(e.cache) < maxCachedTypes {
		out = nil
	}
	out = append(out, exact...)
	for _, i := range e.wild {
		for _, p := range e.rules[i].Types {
			if p.Match(eventType) {
				out = append(out, i)
				break
			}
		}
	}
	slices.Sort(out) // rule order, so decisions come out in file order
	if len(e.cache) < maxCachedTypes {
		e.cache[eventType] = out
	} else {
		e.scratch = out
	}
	return out
}

// EachID is the alert id of an `each` rule's alert for one event: the same
// event (redelivered, or stored twice under one id) gives the same alert.
func EachID(rule, eventID string) string {
	return hashID("each", rule, eventID)
}

// ThresholdID is the alert id of a `threshold` rule's alert for one group
// and window.
func ThresholdID(rule, group string, windowStart int64) string {
	return hashID("threshold", rule, group, strconv.FormatInt(windowStart, 10))
}

// hashID is the first 128 bits of SHA-256 over the NUL-separated parts, in
// hex (32 characters, safe in NATS message ids and URLs).
func hashID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}
