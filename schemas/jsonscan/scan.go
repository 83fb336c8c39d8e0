// Package jsonscan reads JSON text in one pass without building values: it
// finds where a value ends while checking that it is well-formed exactly as
// encoding/json does (same grammar, same nesting limit), decodes string
// tokens, decodes values the way encoding/json with UseNumber does, and
// compacts text the way json.Marshal writes a json.RawMessage.
//
// Its checks only say "not well-formed"; callers that must report why
// decode the same text with encoding/json for the message.
package jsonscan

import "unicode/utf8"

// Kind is the JSON type of a value.
type Kind uint8

// Kinds of values. None means no value, e.g. an absent object member.
const (
	None Kind = iota
	Null
	Bool
	Number
	String
	Array
	Object
)

// maxDepth is encoding/json's nesting limit: deeper text is malformed.
const maxDepth = 10000

// IsSpace reports whether c is JSON whitespace.
func IsSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipSpace returns the index of the first byte at or after i that is not
// JSON whitespace (len(b) if there is none).
func SkipSpace(b []byte, i int) int {
	for i < len(b) && IsSpace(b[i]) {
		i++
	}
	return i
}

// Value checks the value that starts at b[i] (no leading whitespace) and
// returns its kind and the index just past it. ok is false when b[i:] does
// not start with a well-formed value.
func Value(b []byte, i int) (end int, kind Kind, ok bool) {
	return value(b, i, 0)
}

// ValueAt is Value for a value nested inside depth arrays and objects,
// which count towards the nesting limit.
func ValueAt(b []byte, i, depth int) (end int, kind Kind, ok bool) {
	return value(b, i, depth)
}

// MaxDepth is encoding/json's nesting limit: text with more arrays and
// objects nested in each other is malformed.
const MaxDepth = maxDepth

func value(b []byte, i, depth int) (int, Kind, bool) {
	if i >= len(b) {
		return i, None, false
	}
	switch c := b[i]; {
	case c == '"':
		end, _, ok := ScanString(b, i)
		return end, String, ok
	case c == '-' || (c >= '0' && c <= '9'):
		end, ok := scanNumber(b, i)
		return end, Number, ok
	case c == '{':
		end, ok := scanContainer(b, i, depth+1, '}')
		return end, Object, ok
	case c == '[':
		end, ok := scanContainer(b, i, depth+1, ']')
		return end, Array, ok
	case c == 't':
		return literal(b, i, "true", Bool)
	case c == 'f':
		return literal(b, i, "false", Bool)
	case c == 'n':
		return literal(b, i, "null", Null)
	}
	return i, None, false
}

func literal(b []byte, i int, lit string, k Kind) (int, Kind, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, None, false
	}
	return i + len(lit), k, true
}

// scanContainer checks the object ('}') or array (']') starting at b[i].
func scanContainer(b []byte, i, depth int, closing byte) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == closing {
		return i + 1, true
	}
	for {
		var ok bool
		if closing == '}' {
			if i >= len(b) || b[i] != '"' {
				return i, false
			}
			if i, _, ok = ScanString(b, i); !ok {
				return i, false
			}
			if i = SkipSpace(b, i); i >= len(b) || b[i] != ':' {
				return i, false
			}
			i = SkipSpace(b, i+1)
		}
		if i, _, ok = value(b, i, depth); !ok {
			return i, false
		}
		if i = SkipSpace(b, i); i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = SkipSpace(b, i+1)
		case closing:
			return i + 1, true
		default:
			return i, false
		}
	}
}

// ScanString checks the string token starting at b[i] (a '"') and returns
// the index just past its closing quote. simple reports that the token has
// no escapes and is valid UTF-8, so its text between the quotes is exactly
// the string encoding/json decodes.
func ScanString(b []byte, i int) (end int, simple bool, ok bool) {
	start := i
	i++
	escaped, ascii := false, true
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			simple = !escaped && (ascii || utf8.Valid(b[start+1:i]))
			return i + 1, simple, true
		case c == '\\':
			n := escapeLen(b, i)
			if n == 0 {
				return i, false, false
			}
			escaped = true
			i += n
		case c < 0x20:
			return i, false, false
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			i++
		}
	}
	return i, false, false
}

// escapeLen returns the length of the escape sequence at b[i] ('\\'), 0
// when it is not a valid one.
func escapeLen(b []byte, i int) int {
	if i+1 >= len(b) {
		return 0
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		if i+6 > len(b) {
			return 0
		}
		for _, h := range b[i+2 : i+6] {
			if !isHex(h) {
				return 0
			}
		}
		return 6
	}
	return 0
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanNumber checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at b[i].
func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && isDigit(b[i]):
		i = digits(b, i)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		if i+1 >= len(b) || !isDigit(b[i+1]) {
			return i, false
		}
		i = digits(b, i+1)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		i = digits(b, i)
	}
	return i, true
}

func digits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}
