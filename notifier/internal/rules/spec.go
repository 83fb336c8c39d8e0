package rules

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ruleSpec is a rule as written in the file, before validation. Values a
// person may mistype (numbers, durations) are decoded loosely and checked by
// compile, so every error can name the rule and the field.
type ruleSpec struct {
	Name        string         `yaml:"name"`
	Description string         `yaml:"description"`
	Match       matchSpec      `yaml:"match"`
	Kind        string         `yaml:"kind"`
	Threshold   *thresholdSpec `yaml:"threshold"`
	Dedupe      string         `yaml:"dedupe"`
	Throttle    string         `yaml:"throttle"`
	Channels    []string       `yaml:"channels"`
	Optional    []string       `yaml:"optionalChannels"`
	Message     string         `yaml:"message"`
}

type matchSpec struct {
	Type  string     `yaml:"type"`
	Types []string   `yaml:"types"`
	Where []condSpec `yaml:"where"`
}

// condSpec is one condition: a field and exactly one operator.
type condSpec struct {
	Field  string `yaml:"field"`
	Equals any    `yaml:"equals"`
	In     []any  `yaml:"in"`
	Gt     any    `yaml:"gt"`
	Gte    any    `yaml:"gte"`
	Lt     any    `yaml:"lt"`
	Lte    any    `yaml:"lte"`
	Exists any    `yaml:"exists"`
	ops    []string
}

type thresholdSpec struct {
	Count   any    `yaml:"count"`
	Window  string `yaml:"window"`
	GroupBy string `yaml:"groupBy"`
}

// Known keys, per level of a rule.
func ruleKeys() []string {
	return []string{"name", "description", "match", "kind", "threshold", "dedupe", "throttle", "channels", "optionalChannels", "message"}
}
func matchKeys() []string     { return []string{"type", "types", "where"} }
func opKeys() []string        { return []string{"equals", "in", "gt", "gte", "lt", "lte", "exists"} }
func condKeys() []string      { return append([]string{"field"}, opKeys()...) }
func thresholdKeys() []string { return []string{"count", "window", "groupBy"} }

// parsedRule is one entry of the rules list with where it was written.
type parsedRule struct {
	index int
	line  int
	name  string
	spec  ruleSpec
}

// parseFile reads the rules list. Errors about one rule are returned per
// rule; an error about the file as a whole comes back alone.
func parseFile(data []byte) ([]parsedRule, Errors) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errors{{Index: -1, Msg: "not valid YAML or JSON: " + err.Error()}}
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, Errors{{Index: -1, Msg: `want an object with a "rules" list`}}
	}
	doc := root.Content[0]
	if err := checkKeys(doc, "", []string{"rules"}); err != "" {
		return nil, Errors{{Index: -1, Line: doc.Line, Msg: err}}
	}
	list := value(doc, "rules")
	if list == nil || list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		return nil, Errors{{Index: -1, Msg: `"rules" must be a non-empty list`}}
	}
	var errs Errors
	out := make([]parsedRule, 0, len(list.Content))
	for i, n := range list.Content {
		p := parsedRule{index: i, line: n.Line}
		if name := value(n, "name"); name != nil && name.Kind == yaml.ScalarNode {
			p.name = name.Value
		}
		fail := func(field, msg string) { errs = append(errs, p.err(field, msg)) }
		if n.Kind != yaml.MappingNode {
			fail("", "must be an object")
			continue
		}
		if field, msg := checkRuleKeys(n); msg != "" {
			fail(field, msg)
			continue
		}
		if err := n.Decode(&p.spec); err != nil {
			fail("", err.Error())
			continue
		}
		if where := value(value(n, "match"), "where"); where != nil {
			for j, c := range where.Content {
				if j < len(p.spec.Match.Where) {
					p.spec.Match.Where[j].ops = presentKeys(c, opKeys())
				}
			}
		}
		out = append(out, p)
	}
	return out, errs
}

func (p parsedRule) err(field, msg string) *Error {
	return &Error{Rule: p.name, Index: p.index, Line: p.line, Field: field, Msg: msg}
}

// checkRuleKeys reports the first unknown key in a rule, by field path.
func checkRuleKeys(n *yaml.Node) (field, msg string) {
	if msg := checkKeys(n, "", ruleKeys()); msg != "" {
		return "", msg
	}
	if m := value(n, "match"); m != nil && m.Kind == yaml.MappingNode {
		if msg := checkKeys(m, "match.", matchKeys()); msg != "" {
			return "match", msg
		}
		if w := value(m, "where"); w != nil && w.Kind == yaml.SequenceNode {
			for i, c := range w.Content {
				path := fmt.Sprintf("match.where[%d]", i)
				if c.Kind != yaml.MappingNode {
					return path, "must be an object like {field: metadata.amount, gt: 100}"
				}
				if msg := checkKeys(c, path+".", condKeys()); msg != "" {
					return path, msg
				}
			}
		}
	}
	if t := value(n, "threshold"); t != nil && t.Kind == yaml.MappingNode {
		if msg := checkKeys(t, "threshold.", thresholdKeys()); msg != "" {
			return "threshold", msg
		}
	}
	return "", ""
}

// checkKeys reports a key of mapping n that is not allowed.
func checkKeys(n *yaml.Node, prefix string, allowed []string) string {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; !slices.Contains(allowed, k) {
			return fmt.Sprintf("unknown field %q (line %d); known fields: %s", prefix+k, n.Content[i].Line, strings.Join(allowed, ", "))
		}
	}
	return ""
}

// value returns the value of key in mapping n, or nil.
func value(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// presentKeys lists which of keys mapping n has.
func presentKeys(n *yaml.Node, keys []string) []string {
	var out []string
	for _, k := range keys {
		if value(n, k) != nil {
			out = append(out, k)
		}
	}
	return out
}

// Error is one problem in a rules file, located by rule and field.
type Error struct {
	Rule  string // the rule's name, when it has one
	Index int    // position in the rules list; -1 for the file as a whole
	Line  int    // line of the rule in the file, when known
	Field string // dotted field path within the rule, e.g. "match.where[0].gt"
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Index < 0:
		b.WriteString("rules file")
	case e.Rule != "":
		fmt.Fprintf(&b, "rule %q (rules[%d]", e.Rule, e.Index)
	default:
		fmt.Fprintf(&b, "rule rules[%d] (unnamed", e.Index)
	}
	if e.Index >= 0 {
		if e.Line > 0 {
			fmt.Fprintf(&b, ", line %d", e.Line)
		}
		b.WriteString(")")
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Errors are all the problems found in a rules file, reported together so
// one start-up shows every mistake.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	if len(es) == 1 {
		return "invalid rules: " + lines[0]
	}
	return fmt.Sprintf("invalid rules (%d problems):\n  %s", len(es), strings.Join(lines, "\n  "))
}
