package jsonscan

import (
	"encoding/json"
	"unicode/utf8"
)

// Whole checks that b is exactly one well-formed value, with optional
// whitespace around it, and returns the value's kind.
func Whole(b []byte) (Kind, bool) {
	i := SkipSpace(b, 0)
	end, kind, ok := Value(b, i)
	if !ok || SkipSpace(b, end) != len(b) {
		return None, false
	}
	return kind, true
}

// DecodeString returns the value of a well-formed string token (quotes
// included), exactly as encoding/json decodes it. simple is ScanString's
// report for the token.
func DecodeString(tok []byte, simple bool) string {
	if simple {
		return string(tok[1 : len(tok)-1])
	}
	var s string
	_ = json.Unmarshal(tok, &s) // tok is a well-formed string token
	return s
}

// KindOf is the JSON type of a value Decode (or encoding/json with
// UseNumber) produced, None for any other Go type.
func KindOf(v any) Kind {
	switch v.(type) {
	case nil:
		return Null
	case bool:
		return Bool
	case json.Number:
		return Number
	case string:
		return String
	case []any:
		return Array
	case map[string]any:
		return Object
	}
	return None
}

// Decode returns the value of b, which must be one well-formed value, as
// encoding/json with UseNumber decodes it into an any: map[string]any,
// []any, string, json.Number, bool or nil. ok is false when b is not one
// well-formed value.
func Decode(b []byte) (v any, ok bool) {
	if _, ok := Whole(b); !ok {
		return nil, false
	}
	v, _ = decode(b, SkipSpace(b, 0))
	return v, true
}

// decode decodes the well-formed value at b[i] and returns the index past it.
func decode(b []byte, i int) (any, int) {
	switch b[i] {
	case '"':
		end, simple, _ := ScanString(b, i)
		return DecodeString(b[i:end], simple), end
	case '{':
		m := map[string]any{}
		i = SkipSpace(b, i+1)
		for b[i] != '}' {
			end, simple, _ := ScanString(b, i)
			key := DecodeString(b[i:end], simple)
			i = SkipSpace(b, SkipSpace(b, end)+1) // past ':'
			m[key], i = decode(b, i)
			if i = SkipSpace(b, i); b[i] == ',' {
				i = SkipSpace(b, i+1)
			}
		}
		return m, i + 1
	case '[':
		a := []any{}
		i = SkipSpace(b, i+1)
		for b[i] != ']' {
			var v any
			v, i = decode(b, i)
			a = append(a, v)
			if i = SkipSpace(b, i); b[i] == ',' {
				i = SkipSpace(b, i+1)
			}
		}
		return a, i + 1
	case 't':
		return true, i + 4
	case 'f':
		return false, i + 5
	case 'n':
		return nil, i + 4
	}
	end, _ := scanNumber(b, i)
	return json.Number(b[i:end]), end
}

// Unambiguous reports whether the well-formed value b means the same to
// every JSON reader: valid UTF-8, no escaped object keys and no object with
// a repeated key (readers disagree on which copy of a repeated key wins).
func Unambiguous(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	_, ok := unambiguous(b, SkipSpace(b, 0))
	return ok
}

func unambiguous(b []byte, i int) (int, bool) {
	switch b[i] {
	case '{':
		// Keys seen: a few in an array, many in a set, so that a huge
		// object costs linear time, not quadratic.
		var small [16][]byte
		keys := small[:0]
		var many map[string]struct{}
		i = SkipSpace(b, i+1)
		for b[i] != '}' {
			end, _, _ := ScanString(b, i)
			key := b[i+1 : end-1]
			for _, k := range key {
				if k == '\\' {
					return i, false
				}
			}
			switch {
			case many != nil:
				if _, dup := many[string(key)]; dup {
					return i, false
				}
				many[string(key)] = struct{}{}
			case len(keys) == len(small):
				many = make(map[string]struct{}, 2*len(small))
				for _, k := range keys {
					many[string(k)] = struct{}{}
				}
				if _, dup := many[string(key)]; dup {
					return i, false
				}
				many[string(key)] = struct{}{}
			default:
				for _, k := range keys {
					if string(k) == string(key) {
						return i, false
					}
				}
				keys = append(keys, key)
			}
			var ok bool
			if i, ok = unambiguous(b, SkipSpace(b, SkipSpace(b, end)+1)); !ok {
				return i, false
			}
			if i = SkipSpace(b, i); b[i] == ',' {
				i = SkipSpace(b, i+1)
			}
		}
		return i + 1, true
	case '[':
		i = SkipSpace(b, i+1)
		for b[i] != ']' {
			var ok bool
			if i, ok = unambiguous(b, i); !ok {
				return i, false
			}
			if i = SkipSpace(b, i); b[i] == ',' {
				i = SkipSpace(b, i+1)
			}
		}
		return i + 1, true
	}
	end, _, _ := value(b, i, 0)
	return end, true
}

const hexDigits = "0123456789abcdef"

// AppendCompact appends b without whitespace outside strings and with <, >,
// &, U+2028 and U+2029 escaped: byte for byte what json.Marshal writes for a
// json.RawMessage holding b. ok is false, and dst unchanged, when b is not
// one well-formed value.
func AppendCompact(dst, b []byte) ([]byte, bool) {
	if _, ok := Whole(b); !ok {
		return dst, false
	}
	return AppendCompactValid(dst, b), true
}

// AppendCompactValid is AppendCompact for b already known to be one
// well-formed value (e.g. read by Value): it skips the check.
func AppendCompactValid(dst, b []byte) []byte {
	inString := false
	start := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString && c == '\\':
			i++ // the escaped byte cannot end the string
		case c == '"':
			inString = !inString
		case !inString && IsSpace(c):
			dst = append(dst, b[start:i]...)
			start = i + 1
		case c == '<' || c == '>' || c == '&':
			dst = append(dst, b[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		case c == 0xE2 && i+2 < len(b) && b[i+1] == 0x80 && b[i+2]&^1 == 0xA8:
			dst = append(dst, b[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[b[i+2]&0xF])
			i += 2
			start = i + 1
		}
	}
	return append(dst, b[start:]...)
}
