package catalog

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Mode is a type's compatibility mode, as Confluent Schema Registry names
// them: which changes a new version may make to the previous one.
type Mode string

const (
	// Backward: the new version accepts every event the previous one
	// accepted (it may only widen). The default: stored events stay valid.
	Backward Mode = "BACKWARD"
	// Forward: the previous version accepts every event the new one
	// accepts (it may only narrow): consumers on the old version keep up.
	Forward Mode = "FORWARD"
	// Full is Backward and Forward.
	Full Mode = "FULL"
	// None checks nothing statically (the stored events are still checked).
	None Mode = "NONE"
)

// ParseMode reads a mode name (case-insensitive).
func ParseMode(s string) (Mode, error) {
	m := Mode(strings.ToUpper(strings.TrimSpace(s)))
	switch m {
	case Backward, Forward, Full, None:
		return m, nil
	}
	return "", fmt.Errorf("compatibility mode must be BACKWARD, FORWARD, FULL or NONE, got %q", s)
}

// Change is one difference between two versions that a mode refuses, or
// that no static rule decides.
type Change struct {
	// Path is where in the event the change applies ("metadata.plan"; ""
	// the event as a whole).
	Path string `json:"path"`
	// Rule names the change ("required-added", "type-narrowed", …).
	Rule string `json:"rule"`
	// Detail says what changed, with both sides.
	Detail string `json:"detail"`
	// Breaks is the mode direction it breaks: "BACKWARD" (the new version
	// refuses events the old accepted) or "FORWARD" (the reverse);
	// "UNDECIDED" when no static rule decides it (the stored events do).
	Breaks string `json:"breaks"`
}

// Compare lists the changes from old to new that mode refuses, and the
// changes no static rule decides. It decides, per object property
// (recursively through "properties" and "items"): "required" added or
// removed, "type" narrowed or widened, "enum"/"const" added, removed or
// changed, numeric and length bounds ("minimum", "maximum",
// "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
// "minItems", "maxItems") tightened or loosened, "additionalProperties"
// closed or opened, properties added to or removed from a closed object.
// It does not decide (it reports UNDECIDED): a changed "pattern" or
// "format", composition ("allOf", "anyOf", "oneOf", "not", "if"), a changed
// "$ref", and any other keyword that differs. Those are left to the stored
// events' check.
func Compare(old, new []byte, mode Mode) ([]Change, error) {
	var o, n any
	if err := json.Unmarshal(old, &o); err != nil {
		return nil, fmt.Errorf("previous version: %w", err)
	}
	if err := json.Unmarshal(new, &n); err != nil {
		return nil, fmt.Errorf("new version: %w", err)
	}
	var all []Change
	compareNode("", asObject(o), asObject(n), &all)
	if mode == None {
		return nil, nil
	}
	var out []Change
	for _, c := range all {
		switch {
		case c.Breaks == "UNDECIDED",
			c.Breaks == string(Backward) && (mode == Backward || mode == Full),
			c.Breaks == string(Forward) && (mode == Forward || mode == Full):
			out = append(out, c)
		}
	}
	return out, nil
}

func asObject(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// decided are the keywords compareNode reasons about; any other keyword
// that differs is reported UNDECIDED.
var decided = map[string]bool{
	"properties": true, "required": true, "type": true, "enum": true, "const": true,
	"minimum": true, "maximum": true, "exclusiveMinimum": true, "exclusiveMaximum": true,
	"minLength": true, "maxLength": true, "minItems": true, "maxItems": true,
	"additionalProperties": true, "items": true,
	// Annotations: no effect on validity.
	"$schema": true, "$id": true, "title": true, "description": true, "examples": true,
	"default": true, "$comment": true, "deprecated": true, "readOnly": true, "writeOnly": true,
}

func compareNode(path string, o, n map[string]any, out *[]Change) {
	add := func(rule, breaks, format string, args ...any) {
		*out = append(*out, Change{Path: path, Rule: rule, Breaks: breaks, Detail: fmt.Sprintf(format, args...)})
	}
	// Keywords no rule decides.
	keys := slices.Sorted(maps.Keys(merge(o, n)))
	for _, k := range keys {
		if decided[k] {
			continue
		}
		ov, oin := o[k]
		nv, nin := n[k]
		if !oin || !nin || !equalJSON(ov, nv) {
			add(k+"-changed", "UNDECIDED", "%q: %s → %s", k, show(ov, oin), show(nv, nin))
		}
	}
	// required
	oreq, nreq := stringSet(o["required"]), stringSet(n["required"])
	for _, f := range slices.Sorted(maps.Keys(nreq)) {
		if !oreq[f] {
			add("required-added", string(Backward), "%q is required now: events without it are refused", join(path, f))
		}
	}
	for _, f := range slices.Sorted(maps.Keys(oreq)) {
		if !nreq[f] {
			add("required-removed", string(Forward), "%q is optional now: the previous version refuses events without it", join(path, f))
		}
	}
	// type
	if ot, nt := types(o), types(n); !slices.Equal(ot, nt) {
		if ot == nil || (nt != nil && !subset(ot, nt)) {
			add("type-narrowed", string(Backward), "type %s → %s", showSet(ot), showSet(nt))
		}
		if nt == nil || (ot != nil && !subset(nt, ot)) {
			add("type-widened", string(Forward), "type %s → %s", showSet(ot), showSet(nt))
		}
	}
	// enum and const
	for _, k := range []string{"enum", "const"} {
		ov, oin := o[k]
		nv, nin := n[k]
		if oin == nin && equalJSON(ov, nv) {
			continue
		}
		oe, ne := values(k, ov, oin), values(k, nv, nin)
		if ne != nil && (oe == nil || !subsetJSON(oe, ne)) {
			add(k+"-narrowed", string(Backward), "%q: %s → %s", k, show(ov, oin), show(nv, nin))
		}
		if oe != nil && (ne == nil || !subsetJSON(ne, oe)) {
			add(k+"-widened", string(Forward), "%q: %s → %s", k, show(ov, oin), show(nv, nin))
		}
	}
	// bounds: a larger minimum or a smaller maximum narrows.
	for _, b := range []struct {
		k     string
		lower bool
	}{{"minimum", true}, {"exclusiveMinimum", true}, {"minLength", true}, {"minItems", true},
		{"maximum", false}, {"exclusiveMaximum", false}, {"maxLength", false}, {"maxItems", false}} {
		ov, oin := number(o[b.k])
		nv, nin := number(n[b.k])
		if oin == nin && ov == nv {
			continue
		}
		tighter := nin && (!oin || (b.lower && nv > ov) || (!b.lower && nv < ov))
		looser := oin && (!nin || (b.lower && nv < ov) || (!b.lower && nv > ov))
		if tighter {
			add(b.k+"-tightened", string(Backward), "%q: %s → %s", b.k, show(o[b.k], oin), show(n[b.k], nin))
		}
		if looser {
			add(b.k+"-loosened", string(Forward), "%q: %s → %s", b.k, show(o[b.k], oin), show(n[b.k], nin))
		}
	}
	// additionalProperties and properties
	oclosed, nclosed := closed(o), closed(n)
	oprops, nprops := asObject(o["properties"]), asObject(n["properties"])
	if !oclosed && nclosed {
		add("additionalProperties-closed", string(Backward), "fields other than %s are refused now", showSet(slices.Sorted(maps.Keys(nprops))))
	}
	if oclosed && !nclosed {
		add("additionalProperties-opened", string(Forward), "fields other than %s are accepted now", showSet(slices.Sorted(maps.Keys(oprops))))
	}
	if ap, ok := n["additionalProperties"].(map[string]any); ok {
		if oap, ok := o["additionalProperties"].(map[string]any); ok {
			compareNode(join(path, "*"), oap, ap, out)
		}
	}
	for _, f := range slices.Sorted(maps.Keys(merge(oprops, nprops))) {
		op, oin := oprops[f]
		np, nin := nprops[f]
		switch {
		case oin && nin:
			compareNode(join(path, f), asObject(op), asObject(np), out)
		case nin && oclosed:
			add("property-added", string(Forward), "%q is new: the previous version refuses it (additionalProperties is false)", join(path, f))
		case oin && nclosed:
			add("property-removed", string(Backward), "%q is gone: events with it are refused (additionalProperties is false)", join(path, f))
		case nin && !oclosed:
			// A new constraint on a field that was free.
			if len(asObject(np)) > 0 {
				add("property-constrained", string(Backward), "%q was any value, now %s", join(path, f), show(np, true))
			}
		case oin && !nclosed:
			if len(asObject(op)) > 0 {
				add("property-freed", string(Forward), "%q was %s, now any value", join(path, f), show(op, true))
			}
		}
	}
	// items (one schema for every item)
	if oi, ok := o["items"].(map[string]any); ok {
		if ni, ok := n["items"].(map[string]any); ok {
			compareNode(join(path, "items"), oi, ni, out)
		}
	}
}

func merge(a, b map[string]any) map[string]any {
	m := maps.Clone(a)
	if m == nil {
		m = map[string]any{}
	}
	maps.Copy(m, b)
	return m
}

func join(path, f string) string {
	if path == "" {
		return f
	}
	return path + "." + f
}

func closed(m map[string]any) bool {
	v, ok := m["additionalProperties"].(bool)
	return ok && !v
}

func stringSet(v any) map[string]bool {
	out := map[string]bool{}
	if a, ok := v.([]any); ok {
		for _, s := range a {
			if s, ok := s.(string); ok {
				out[s] = true
			}
		}
	}
	return out
}

// types is the sorted "type" list; nil is any type. "integer" is kept
// apart from "number" (it is narrower).
func types(m map[string]any) []string {
	switch t := m["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, s := range t {
			if s, ok := s.(string); ok {
				out = append(out, s)
			}
		}
		slices.Sort(out)
		return out
	}
	return nil
}

// subset: every type in a is accepted by b ("integer" is within "number").
func subset(a, b []string) bool {
	for _, t := range a {
		if !slices.Contains(b, t) && !(t == "integer" && slices.Contains(b, "number")) {
			return false
		}
	}
	return true
}

func values(k string, v any, present bool) []any {
	if !present {
		return nil
	}
	if k == "const" {
		return []any{v}
	}
	a, _ := v.([]any)
	if a == nil {
		a = []any{}
	}
	return a
}

func subsetJSON(a, b []any) bool {
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y any) bool { return equalJSON(x, y) }) {
			return false
		}
	}
	return true
}

func equalJSON(a, b any) bool {
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return string(ab) == string(bb)
}

func number(v any) (float64, bool) {
	f, ok := v.(float64)
	return f, ok
}

func show(v any, present bool) string {
	if !present {
		return "absent"
	}
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

func showSet(s []string) string {
	if s == nil {
		return "any"
	}
	return "[" + strings.Join(s, ",") + "]"
}
