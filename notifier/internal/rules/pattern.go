package rules

import (
	"fmt"
	"strings"
)

// Pattern matches event types with NATS subject wildcards over their
// dot-separated tokens: "*" is exactly one token and ">" (last only) is one
// or more tokens. "order.*" matches "order.created" but not
// "order.item.added"; "order.>" matches both; ">" matches every type.
type Pattern struct {
	text   string
	tokens []string
}

// validToken reports whether s is a non-empty run of [A-Za-z0-9_-]: a
// token of an event type, or a key of a metadata path.
func validToken(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return s != ""
}

// ParsePattern checks and compiles an event type pattern.
func ParsePattern(s string) (Pattern, error) {
	if s == "" {
		return Pattern{}, fmt.Errorf("empty event type pattern")
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "*":
		case t == ">":
			if i != len(tokens)-1 {
				return Pattern{}, fmt.Errorf("pattern %q: \">\" must be the last token", s)
			}
		case !validToken(t):
			return Pattern{}, fmt.Errorf("pattern %q: token %q must be \"*\", \">\" or [A-Za-z0-9_-]+", s, t)
		}
	}
	return Pattern{text: s, tokens: tokens}, nil
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.text }

// Literal reports whether the pattern has no wildcard (it matches one type).
func (p Pattern) Literal() bool { return !strings.ContainsAny(p.text, "*>") }

// Match reports whether eventType matches the pattern. It does not allocate.
func (p Pattern) Match(eventType string) bool {
	rest := eventType
	for i, t := range p.tokens {
		if t == ">" {
			return rest != ""
		}
		if rest == "" {
			return false // the pattern has more tokens than the type
		}
		tok, after, found := strings.Cut(rest, ".")
		if tok == "" || (t != "*" && t != tok) {
			return false
		}
		if !found {
			return i == len(p.tokens)-1
		}
		if rest = after; rest == "" {
			return false // trailing dot
		}
	}
	return false // the type has more tokens than the pattern
}
