package schemas

import (
	"encoding/json"

	"github.com/kilnhq/kiln/schemas/jsonscan"
)

// EventFields are the top-level members of one event as sent by a client,
// read in a single pass over its JSON text by ScanEvent: what the envelope
// schema looks at, without decoding the rest. A member that is absent has
// kind jsonscan.None; a member that appears twice counts as its last copy,
// as encoding/json decodes it.
type EventFields struct {
	// Kind is the JSON type of the event itself; the other fields are only
	// filled in for an object.
	Kind jsonscan.Kind
	// EventType, UserID and ID hold the decoded strings when the members
	// are strings.
	EventType string
	UserID    string
	ID        string
	// Timestamp is the number's literal text when the member is a number;
	// it aliases the scanned buffer.
	Timestamp []byte
	// Metadata is the member's JSON text, whatever its type; it aliases the
	// scanned buffer.
	Metadata json.RawMessage
	// Kinds of the envelope's members.
	EventTypeKind, UserIDKind, IDKind, TimestampKind, MetadataKind jsonscan.Kind
	// Unknown is true when the event has a member outside the envelope.
	Unknown bool
}

// ScanEvent reads the value that starts at b[i] (no leading whitespace),
// nested inside depth arrays or objects (0 for a value on its own, 1 for an
// item of a JSON array body), checking that it is well-formed as
// encoding/json would, and returns its envelope members and the index just
// past it. ok is false when b[i:] does not start with a well-formed value.
func ScanEvent(b []byte, i, depth int) (f EventFields, end int, ok bool) {
	if i >= len(b) || b[i] != '{' || depth+1 > jsonscan.MaxDepth {
		end, f.Kind, ok = jsonscan.ValueAt(b, i, depth)
		return f, end, ok
	}
	depth++ // inside the event object
	f.Kind = jsonscan.Object
	i = jsonscan.SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return f, i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return f, i, false
		}
		keyEnd, simple, ok := jsonscan.ScanString(b, i)
		if !ok {
			return f, keyEnd, false
		}
		key := b[i+1 : keyEnd-1]
		if !simple {
			key = []byte(jsonscan.DecodeString(b[i:keyEnd], false))
		}
		if i = jsonscan.SkipSpace(b, keyEnd); i >= len(b) || b[i] != ':' {
			return f, i, false
		}
		i = jsonscan.SkipSpace(b, i+1)
		var valEnd int
		var kind jsonscan.Kind
		if i < len(b) && b[i] == '"' {
			valEnd, simple, ok = jsonscan.ScanString(b, i)
			kind = jsonscan.String
		} else {
			valEnd, kind, ok = jsonscan.ValueAt(b, i, depth)
		}
		if !ok {
			return f, valEnd, false
		}
		f.set(key, b[i:valEnd], kind, simple)
		if i = jsonscan.SkipSpace(b, valEnd); i >= len(b) {
			return f, i, false
		}
		switch b[i] {
		case ',':
			i = jsonscan.SkipSpace(b, i+1)
		case '}':
			return f, i + 1, true
		default:
			return f, i, false
		}
	}
}

// set records one member: key is its decoded name, val its JSON text and
// simple ScanString's report when val is a string.
func (f *EventFields) set(key, val []byte, kind jsonscan.Kind, simple bool) {
	str := func() string {
		if kind != jsonscan.String {
			return ""
		}
		return jsonscan.DecodeString(val, simple)
	}
	switch string(key) {
	case "eventType":
		f.EventType, f.EventTypeKind = str(), kind
	case "userId":
		f.UserID, f.UserIDKind = str(), kind
	case "id":
		f.ID, f.IDKind = str(), kind
	case "timestamp":
		f.Timestamp, f.TimestampKind = nil, kind
		if kind == jsonscan.Number {
			f.Timestamp = val
		}
	case "metadata":
		f.Metadata, f.MetadataKind = val, kind
	default:
		f.Unknown = true
	}
}

// ReadEvent is ScanEvent for a buffer that holds exactly one value, with
// optional whitespace around it.
func ReadEvent(b []byte) (EventFields, bool) {
	f, end, ok := ScanEvent(b, jsonscan.SkipSpace(b, 0), 0)
	if !ok || jsonscan.SkipSpace(b, end) != len(b) {
		return EventFields{}, false
	}
	return f, true
}
