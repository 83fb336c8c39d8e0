package live

import (
	"github.com/kilnhq/kiln/schemas"
)

// Filter selects the events a client receives. The zero Filter selects
// every event.
type Filter struct {
	// Types are event-type patterns with NATS subject wildcards, matched
	// token by token on the dot-separated type: an exact type
	// (order.created), '*' for exactly one token (order.* matches
	// order.created, not order or order.a.b) and a trailing '>' for one or
	// more tokens (order.> matches order.created and order.a.b, not order).
	// An event matching any pattern is selected; none selects every type.
	// The HTTP layer validates them.
	Types []string
	// Granted, when set, are the patterns a subscriber token allows: an
	// event must match one of them too (the token's limit, whatever Types
	// asks for).
	Granted []string
	// UserID, when set, selects only that user's events.
	UserID string
	// NoAlerts leaves out the "alert" frames, which otherwise go to every
	// client whatever Types and UserID select.
	NoAlerts bool
}

// Match reports whether an event of type typ by user is selected.
func (f Filter) Match(typ, user string) bool {
	if f.UserID != "" && user != f.UserID {
		return false
	}
	return matchAny(f.Types, typ) && (f.Granted == nil || matchAny(f.Granted, typ))
}

// matchAny reports whether typ matches one of patterns; none matches all.
func matchAny(patterns []string, typ string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if schemas.MatchType(p, typ) {
			return true
		}
	}
	return false
}

// everything reports whether f selects every event: such a stream is the
// one the old dashboard opened, and only it gets the compat snapshot
// frames. A filtered stream's total and newest events would be those of
// the events it does not select (or cost a computation per filter).
func (f Filter) everything() bool {
	return len(f.Types) == 0 && f.UserID == ""
}

func (f Filter) matches(fr *Frame) bool {
	if fr.alert {
		return !f.NoAlerts
	}
	return f.Match(fr.Type, fr.UserID)
}

// subjects is the server-side subject filter of a catch-up consumer: the
// pattern's subject when there is exactly one, otherwise every event
// (JetStream refuses overlapping filter subjects such as order.* and
// order.>, so several patterns are matched here instead). The userId
// filter is always applied here.
func (f Filter) subjects() []string {
	if len(f.Types) == 1 {
		return []string{schemas.Subject(f.Types[0])}
	}
	return []string{schemas.SubjectAll}
}
