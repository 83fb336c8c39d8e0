package readmodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/kilnhq/kiln/schemas"
)

// RenderEvent renders ev exactly as GET /events renders it when read back
// from the MongoDB history: metadata goes through the same BSON conversion
// (sorted keys, normalised numbers). Metadata of plain values (below) is
// already in that form once its whitespace is dropped, and is copied so;
// any other goes through BSON, as the history stores it.
func RenderEvent(ev schemas.Event) ([]byte, error) {
	out := ev
	md, plain := plainMetadata(ev.Metadata)
	if plain || len(ev.Metadata) == 0 {
		out.Metadata = md
		if b, ok := appendPlainEvent(make([]byte, 0, 160+len(ev.ID)+len(ev.EventType)+len(ev.UserID)+len(md)), out); ok {
			return b, nil
		}
	} else {
		md, err := renderMetadataViaBSON(ev)
		if err != nil {
			return nil, err
		}
		out.Metadata = md
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("event %s: render: %w", ev.ID, err)
	}
	return b, nil
}

// appendPlainEvent appends ev as json.Marshal renders it, when its strings
// are plain (printable ASCII without '"', '\\', '<', '>' or '&': nothing
// json.Marshal escapes) and its metadata is plain and compact (what
// plainMetadata returns, or none); false otherwise. json.Marshal takes
// about 1 µs an event through reflection and re-compacting the metadata,
// a fifth of a replay's process time per cached event.
func appendPlainEvent(b []byte, ev schemas.Event) ([]byte, bool) {
	if !plainString(ev.ID) || !plainString(ev.EventType) || !plainString(ev.UserID) {
		return nil, false
	}
	b = append(b, `{"id":"`...)
	b = append(b, ev.ID...)
	b = append(b, `","eventType":"`...)
	b = append(b, ev.EventType...)
	b = append(b, `","userId":"`...)
	b = append(b, ev.UserID...)
	b = append(b, `","timestamp":`...)
	b = strconv.AppendInt(b, ev.Timestamp, 10)
	if len(ev.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		b = append(b, ev.Metadata...)
	}
	b = append(b, `,"receivedAt":`...)
	b = strconv.AppendInt(b, ev.ReceivedAt, 10)
	if ev.SchemaVersion != 0 {
		b = append(b, `,"schemaVersion":`...)
		b = strconv.AppendInt(b, int64(ev.SchemaVersion), 10)
	}
	if ev.Seq != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, ev.Seq, 10)
	}
	return append(b, '}'), true
}

// plainString reports whether json.Marshal writes s as it is, in quotes.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// renderMetadataViaBSON renders ev's metadata as the history returns it:
// through a BSON document, or as sent when it cannot be one.
func renderMetadataViaBSON(ev schemas.Event) (json.RawMessage, error) {
	doc, err := toDoc(ev)
	if err != nil {
		return nil, err
	}
	switch {
	case doc.Metadata != nil:
		raw, err := bson.Marshal(doc.Metadata)
		if err != nil {
			return nil, fmt.Errorf("event %s: encode metadata: %w", ev.ID, err)
		}
		md, err := metadataToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", ev.ID, err)
		}
		return md, nil
	case doc.MetadataJSON != "":
		return json.RawMessage(doc.MetadataJSON), nil
	}
	return nil, nil
}

// plainMetadata returns raw without its whitespace when the BSON round trip
// would give those very bytes back, and false otherwise (the caller then
// takes the BSON path). It accepts an object whose keys and strings are
// printable ASCII without '"', '\\', '<', '>' or '&' (no escapes to
// normalise, nothing json.Marshal escapes); whose keys are valid MongoDB
// field names, each once per object; and whose numbers are integers in
// int64's range written canonically (no "-0"); with true, false, null,
// arrays and such objects nested. That is what most trackers send.
func plainMetadata(raw json.RawMessage) (json.RawMessage, bool) {
	s := plainScanner{in: raw, out: make([]byte, 0, len(raw))}
	s.space()
	if !s.object(0) {
		return nil, false
	}
	s.space()
	if s.i != len(s.in) {
		return nil, false
	}
	return s.out, true
}

// plainMaxDepth bounds nesting on the fast path (deeper goes through BSON,
// which has its own limits).
const plainMaxDepth = 32

type plainScanner struct {
	in  []byte
	i   int
	out []byte
}

func (s *plainScanner) space() {
	for s.i < len(s.in) {
		switch s.in[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *plainScanner) eat(c byte) bool {
	s.space()
	if s.i < len(s.in) && s.in[s.i] == c {
		s.i++
		s.out = append(s.out, c)
		return true
	}
	return false
}

// str copies a plain string and returns its content.
func (s *plainScanner) str() ([]byte, bool) {
	s.space()
	if s.i >= len(s.in) || s.in[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.in); j++ {
		switch c := s.in[j]; {
		case c == '"':
			s.out = append(s.out, s.in[s.i:j+1]...)
			s.i = j + 1
			return s.in[start:j], true
		case c < 0x20 || c > 0x7e || c == '\\' || c == '<' || c == '>' || c == '&':
			return nil, false
		}
	}
	return nil, false
}

func (s *plainScanner) object(depth int) bool {
	if depth > plainMaxDepth || !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return true
	}
	var keys [][]byte
	for {
		k, ok := s.str()
		if !ok || len(k) > 0 && k[0] == '$' || bytes.IndexByte(k, '.') >= 0 {
			return false
		}
		for _, seen := range keys {
			if bytes.Equal(seen, k) {
				return false // a repeated key: its last value at its first place
			}
		}
		keys = append(keys, k)
		if !s.eat(':') || !s.value(depth) {
			return false
		}
		if s.eat('}') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

func (s *plainScanner) array(depth int) bool {
	if depth > plainMaxDepth || !s.eat('[') {
		return false
	}
	if s.eat(']') {
		return true
	}
	for {
		if !s.value(depth) {
			return false
		}
		if s.eat(']') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

func (s *plainScanner) value(depth int) bool {
	s.space()
	if s.i >= len(s.in) {
		return false
	}
	switch c := s.in[s.i]; {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		return s.integer()
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(s.in[s.i:], []byte(lit)) {
				s.i += len(lit)
				s.out = append(s.out, lit...)
				return true
			}
		}
		return false
	}
}

// integer copies a canonical integer in int64's range.
func (s *plainScanner) integer() bool {
	j := s.i
	if j < len(s.in) && s.in[j] == '-' {
		j++
	}
	digits := j
	for j < len(s.in) && s.in[j] >= '0' && s.in[j] <= '9' {
		j++
	}
	n := j - digits
	if n == 0 || n > 1 && s.in[digits] == '0' {
		return false
	}
	if j < len(s.in) {
		if c := s.in[j]; c == '.' || c == 'e' || c == 'E' {
			return false // a float: its form is the BSON double's
		}
	}
	lit := s.in[s.i:j]
	if string(lit) == "-0" {
		return false
	}
	if n >= 19 {
		if _, err := strconv.ParseInt(string(lit), 10, 64); err != nil {
			return false
		}
	}
	s.out = append(s.out, lit...)
	s.i = j
	return true
}
