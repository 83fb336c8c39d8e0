package evaluate

import (
	"slices"
	"time"

	"github.com/tidwall/gjson"

	"github.com/kilnhq/kiln/notifier/internal/rules"
	"github.com/kilnhq/kiln/schemas"
)

// setAbove is the number of ids from which a window also keeps a set.
const setAbove = 32

// windowKey names one tumbling window of one group of one rule.
type windowKey struct {
	rule  int
	group string
	start int64 // Unix ms
}

// window is what one tumbling window counted: the ids of up to count+1
// matching events (more are never needed) and whether it has decided.
type window struct {
	ids     []string
	set     map[string]struct{} // mirrors ids once it is long
	decided bool
}

func (w *window) has(id string) bool {
	if w.set != nil {
		_, ok := w.set[id]
		return ok
	}
	return slices.Contains(w.ids, id)
}

func (w *window) add(id string) {
	w.ids = append(w.ids, id)
	if w.set == nil && len(w.ids) > setAbove {
		w.set = make(map[string]struct{}, 2*setAbove)
		for _, x := range w.ids {
			w.set[x] = struct{}{}
		}
	} else if w.set != nil {
		w.set[id] = struct{}{}
	}
}

// count adds ev to its window and returns the decision when the window's
// count exceeds the rule's and the window has not decided yet. Events that
// lack the rule's groupBy field are not counted.
func (e *Engine) count(i int, r *rules.Rule, ev *schemas.Event) (Decision, bool) {
	var group string
	if !r.GroupBy.IsZero() {
		v := e.fields.Get(r.GroupBy)
		if !v.Exists() || v.Type == gjson.Null {
			return Decision{}, false
		}
		group = v.String()
	}
	size := r.Window.Milliseconds()
	start := ev.Timestamp - ev.Timestamp%size
	if ev.Timestamp < 0 && ev.Timestamp%size != 0 {
		start -= size
	}
	key := windowKey{rule: i, group: group, start: start}
	w := e.windows[key]
	if w == nil {
		w = &window{ids: make([]string, 0, min(r.Count+1, setAbove))}
		e.windows[key] = w
	}
	if w.decided {
		return Decision{}, false
	}
	if len(w.ids) <= r.Count && !w.has(ev.ID) {
		w.add(ev.ID)
	}
	if len(w.ids) <= r.Count {
		return Decision{}, false
	}
	return Decision{
		Rule:    r,
		AlertID: ThresholdID(r.Name, group, start),
		Window:  rules.Window{Group: group, Count: len(w.ids), Start: start, End: start + size},
		key:     key,
	}, true
}

// FutureHorizon is how far ahead of now a window may start and still be
// kept: ingest's default INGEST_MAX_FUTURE_SKEW. Events stamped further
// ahead (accepted before ingest bounded the skew, or by an ingest with a
// larger one) are counted, but their windows are forgotten at the next
// prune instead of living until their time comes.
const FutureHorizon = 24 * time.Hour

// Prune forgets windows that ended more than one window length before now,
// and windows that start more than FutureHorizon after it, keeping memory
// bounded. An event that arrives later than that for a forgotten window is
// counted afresh; its alert id is the same, so storing it again is a no-op
// rather than a second alert.
func (e *Engine) Prune(now time.Time) int {
	ms := now.UnixMilli()
	horizon := ms + FutureHorizon.Milliseconds()
	n := 0
	for k := range e.windows {
		size := e.rules[k.rule].Window.Milliseconds()
		if k.start+2*size < ms || k.start > horizon {
			delete(e.windows, k)
			n++
		}
	}
	return n
}

// Windows is the number of windows held in memory.
func (e *Engine) Windows() int { return len(e.windows) }

// MaxWindow is the longest threshold window of the rule set (0: none).
func (e *Engine) MaxWindow() time.Duration {
	var m time.Duration
	for _, r := range e.rules {
		if r.Kind == rules.Threshold {
			m = max(m, r.Window)
		}
	}
	return m
}
