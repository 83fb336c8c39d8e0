package schemas

import (
	"fmt"
	"strings"
)

const (
	// StreamName is the JetStream stream that holds every accepted event.
	StreamName = "EVENTS"
	// SubjectPrefix prefixes every event subject: events.<eventType>.
	SubjectPrefix = "events."
	// SubjectAll matches every event subject.
	SubjectAll = SubjectPrefix + ">"

	// HeaderMsgID is JetStream's de-duplication header; Kiln sets it to the event id.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderUserID carries the event's userId so consumers can filter
	// without decoding the body.
	HeaderUserID = "Kiln-User-Id"
)

// Subject returns the subject an event of the given type is stored under.
func Subject(eventType string) string {
	return SubjectPrefix + eventType
}

// EventType returns the event type a subject was built from, and false when
// the subject is not an event subject.
func EventType(subject string) (string, bool) {
	t, ok := strings.CutPrefix(subject, SubjectPrefix)
	return t, ok && t != ""
}

// MatchType reports whether the event type typ matches pattern with NATS
// wildcard semantics: '*' is one token, a trailing '>' one or more tokens
// (the filters of the live stream, gRPC Subscribe and webhook endpoints).
func MatchType(pattern, typ string) bool {
	for {
		p, prest, pmore := strings.Cut(pattern, ".")
		t, trest, tmore := strings.Cut(typ, ".")
		switch p {
		case ">":
			return t != ""
		case "*":
			if t == "" {
				return false
			}
		default:
			if p != t {
				return false
			}
		}
		if !pmore || !tmore {
			return pmore == tmore
		}
		pattern, typ = prest, trest
	}
}

// CheckPattern reports why p is not an event-type pattern: dot-separated
// tokens of letters, digits, '_' or '-', where a token may be '*' (exactly
// one token) and the last one '>' (one or more), at most 128 characters.
func CheckPattern(p string) error {
	if p == "" || len(p) > maxEventTypeLen {
		return fmt.Errorf("%q is not an event type pattern: 1-%d characters", p, maxEventTypeLen)
	}
	tokens := strings.Split(p, ".")
	for i, t := range tokens {
		switch {
		case t == "*":
		case t == ">" && i == len(tokens)-1:
		case t == ">":
			return fmt.Errorf("%q is not an event type pattern: '>' may only be the last token", p)
		case !validEventType(t):
			return fmt.Errorf("%q is not an event type pattern: dot-separated tokens of letters, digits, '_' or '-', "+
				"or the wildcards '*' (one token) and '>' (the rest)", p)
		}
	}
	return nil
}

// ValidEventType reports whether s is a valid event type: 1-128 characters,
// dot-separated tokens of letters, digits, '_' or '-'.
func ValidEventType(s string) bool { return validEventType(s) }
