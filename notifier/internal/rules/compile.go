// Package rules reads, validates and compiles the notifier's alert rules:
// which events match (event type patterns with NATS wildcards, conditions
// on fields), whether a rule fires on each matching event or on more than N
// matching events in a window per group, how repeats are throttled, where
// the alert goes and what it says.
package rules

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"text/template"
	"time"
)

// Kind is how a rule fires.
type Kind uint8

const (
	// Each fires on every matching event.
	Each Kind = iota + 1
	// Threshold fires when more than Count matching events of one group
	// fall into one tumbling window.
	Threshold
)

func (k Kind) String() string {
	if k == Threshold {
		return "threshold"
	}
	return "each"
}

// Limits on what a rule may ask for.
const (
	MaxCount  = 10_000 // threshold counts keep up to Count+1 event ids per window
	MinWindow = time.Second
	MaxWindow = 24 * time.Hour
)

// LogChannel is always available: it writes the alert to the service log.
const LogChannel = "log"

// Rule is one compiled rule.
type Rule struct {
	Name     string
	Kind     Kind
	Types    []Pattern
	Conds    []Cond
	Count    int           // threshold: fires when the count exceeds it
	Window   time.Duration // threshold: tumbling window length
	GroupBy  Field         // threshold: counts are per value of this field
	Throttle time.Duration // 0: no throttle
	Channels []string
	dedupe   *template.Template
	message  *template.Template
}

// Set is the compiled rules of one file, in file order.
type Set struct {
	Rules []*Rule
}

// Options are what compile checks a file against.
type Options struct {
	// Channels are the configured channels; "log" is always available. A
	// rule whose channels name another one fails; its optionalChannels are
	// used when configured and skipped otherwise.
	Channels []string
}

// Load reads and compiles the rules file at path.
func Load(path string, opts Options) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rules file: %w", err)
	}
	set, err := Parse(data, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

// Parse compiles a rules document (YAML, or JSON, which is YAML too). It
// reports every problem found, each naming its rule and field (as Errors).
func Parse(data []byte, opts Options) (*Set, error) {
	parsed, errs := parseFile(data)
	avail := map[string]bool{LogChannel: true}
	for _, c := range opts.Channels {
		avail[c] = true
	}
	set := &Set{}
	seen := map[string]int{}
	for _, p := range parsed {
		r, rerrs := compile(p, avail)
		errs = append(errs, rerrs...)
		if r == nil {
			continue
		}
		if first, dup := seen[r.Name]; dup {
			errs = append(errs, p.err("name", fmt.Sprintf("duplicate rule name (also rules[%d])", first)))
		}
		seen[r.Name] = p.index
		set.Rules = append(set.Rules, r)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return set, nil
}

// validName reports whether s is 1-64 characters of [A-Za-z0-9_.-]
// starting with a letter or digit.
func validName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' || s[0] == '_' || s[0] == '-' {
		return false
	}
	return validToken(strings.ReplaceAll(s, ".", "_"))
}

// compile validates one rule; it returns nil and the errors when invalid.
func compile(p parsedRule, avail map[string]bool) (*Rule, Errors) {
	var errs Errors
	fail := func(field, format string, args ...any) {
		errs = append(errs, p.err(field, fmt.Sprintf(format, args...)))
	}
	s := p.spec
	r := &Rule{Name: s.Name}
	if !validName(s.Name) {
		fail("name", "required, 1-64 characters of [A-Za-z0-9_.-] starting with a letter or digit")
	}
	types := s.Match.Types
	if s.Match.Type != "" {
		types = append([]string{s.Match.Type}, types...)
	}
	if len(types) == 0 {
		fail("match.type", `required: an event type or pattern such as "payment.failed", "order.*" or ">"`)
	}
	for i, t := range types {
		pat, err := ParsePattern(t)
		if err != nil {
			fail(fmt.Sprintf("match.types[%d]", i), "%v", err)
			continue
		}
		r.Types = append(r.Types, pat)
	}
	for i, c := range s.Match.Where {
		cond, field, err := compileCond(c)
		if err != nil {
			fail(fmt.Sprintf("match.where[%d]%s", i, field), "%v", err)
			continue
		}
		r.Conds = append(r.Conds, cond)
	}
	switch s.Kind {
	case "", "each":
		r.Kind = Each
		if s.Threshold != nil {
			fail("threshold", `only for kind "threshold"`)
		}
	case "threshold":
		r.Kind = Threshold
		errs = append(errs, compileThreshold(p, r)...)
	default:
		fail("kind", `must be "each" or "threshold", got %q`, s.Kind)
	}
	if s.Throttle != "" {
		d, err := time.ParseDuration(s.Throttle)
		if err != nil || d < 0 {
			fail("throttle", `must be a duration such as "10m", got %q`, s.Throttle)
		}
		r.Throttle = d
	}
	r.Channels, errs = compileChannels(p, s.Channels, s.Optional, avail, errs)
	var err error
	if r.dedupe, err = parseTemplate("dedupe", s.Dedupe, defaultDedupe(r.Kind)); err != nil {
		fail("dedupe", "%v", err)
	}
	if r.message, err = parseTemplate("message", s.Message, defaultMessage(r.Kind)); err != nil {
		fail("message", "%v", err)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}

func compileThreshold(p parsedRule, r *Rule) Errors {
	t := p.spec.Threshold
	if t == nil {
		return Errors{p.err("threshold", "required for kind threshold: {count: N, window: 1m, groupBy: userId}")}
	}
	var errs Errors
	n, ok := toFloat(t.Count)
	if !ok || n != float64(int(n)) || n < 0 || n > MaxCount {
		errs = append(errs, p.err("threshold.count", fmt.Sprintf("must be a whole number from 0 to %d (fires when more than count events match), got %v", MaxCount, t.Count)))
	}
	r.Count = int(n)
	w, err := time.ParseDuration(t.Window)
	if err != nil || w < MinWindow || w > MaxWindow || w%time.Millisecond != 0 {
		errs = append(errs, p.err("threshold.window", fmt.Sprintf("must be a duration from %s to %s such as \"1m\", got %q", MinWindow, MaxWindow, t.Window)))
	}
	r.Window = w
	if t.GroupBy != "" {
		f, err := ParseField(t.GroupBy)
		if err != nil {
			errs = append(errs, p.err("threshold.groupBy", err.Error()))
		}
		r.GroupBy = f
	}
	return errs
}

func compileChannels(p parsedRule, names, optional []string, avail map[string]bool, errs Errors) ([]string, Errors) {
	var out []string
	add := func(name string) {
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	for i, name := range names {
		if !avail[name] {
			errs = append(errs, p.err(fmt.Sprintf("channels[%d]", i),
				fmt.Sprintf("channel %q is not configured (configured: %s); list it under optionalChannels to use it only when configured", name, strings.Join(sortedKeys(avail), ", "))))
			continue
		}
		add(name)
	}
	for i, name := range optional {
		switch {
		case avail[name]:
			add(name)
		case name != "slack" && name != "email":
			errs = append(errs, p.err(fmt.Sprintf("optionalChannels[%d]", i), fmt.Sprintf("unknown channel %q (want slack or email)", name)))
		}
	}
	if len(names)+len(optional) == 0 {
		errs = append(errs, p.err("channels", "required: a list such as [log, slack, email]"))
	} else if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, p.err("optionalChannels", "none of the rule's channels is configured; add channels: [log]"))
	}
	return out, errs
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}
