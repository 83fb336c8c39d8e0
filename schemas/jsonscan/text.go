package jsonscan

import "unicode/utf8"

// ValidText reports whether every string in the well-formed JSON text b
// (keys and values) is valid Unicode as sent: the bytes are valid UTF-8
// and every \u escape of a surrogate is half of a pair. encoding/json
// replaces both kinds of invalid text with U+FFFD, so two different
// invalid strings would decode to the same one; Kiln refuses them instead.
func ValidText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+1 < len(b) && b[i+1] != 'u' {
			i++ // a one-character escape: skip what it escapes
			continue
		}
		r, ok := hex4(b, i+2)
		if !ok {
			return false // not well-formed; callers pass scanned text
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return false // a low surrogate without its high half
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := hex4(b, i+8)
			if !ok || b[i+6] != '\\' || b[i+7] != 'u' || lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 11
		default:
			i += 5
		}
	}
	return true
}

// hex4 reads the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// InvalidTextMembers returns, for the well-formed JSON object b, the names
// of the members whose name or value holds text ValidText refuses, in
// order; a name that is itself invalid is reported as "" (the object).
func InvalidTextMembers(b []byte) []string {
	var bad []string
	i := SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil
	}
	i = SkipSpace(b, i+1)
	for i < len(b) && b[i] == '"' {
		keyEnd, simple, ok := ScanString(b, i)
		if !ok {
			return bad
		}
		keyTok := b[i:keyEnd]
		i = SkipSpace(b, SkipSpace(b, keyEnd)+1) // past ':'
		valEnd, _, ok := Value(b, i)
		if !ok {
			return bad
		}
		switch {
		case !ValidText(keyTok):
			bad = append(bad, "")
		case !ValidText(b[i:valEnd]):
			bad = append(bad, DecodeString(keyTok, simple))
		}
		i = SkipSpace(b, valEnd)
		if i < len(b) && b[i] == ',' {
			i = SkipSpace(b, i+1)
		}
	}
	return bad
}
