package schemas

import (
	"unicode/utf8"

	"github.com/kilnhq/kiln/schemas/jsonscan"
)

// The fast path decides what envelope.json decides, without jsonschema and
// without decoding the event into a map. It is exact (the fuzz test in
// fastpath_test.go holds it to jsonschema's decisions), and the registry
// only uses it while envelope.json is the schema written out in
// envelopeSpec (see spec.go); a schema edit switches it off until the fast
// path is updated with it.

// Limits of envelope.json.
const (
	maxEventTypeLen = 128
	maxUserIDLen    = 256
	maxIDLen        = 128
	// maxTimestamp is 9999-12-31T23:59:59.999Z in ms, as significant
	// digits of 0.253402300799999e15.
	maxTimestampDigits = "253402300799999"
	maxTimestampExp    = 15
)

// envelopeValid reports whether f satisfies envelope.json.
func envelopeValid(f *EventFields) bool {
	return f.Kind == jsonscan.Object && !f.Unknown &&
		f.EventTypeKind == jsonscan.String && validEventType(f.EventType) &&
		f.UserIDKind == jsonscan.String && runesWithin(f.UserID, maxUserIDLen) &&
		f.TimestampKind == jsonscan.Number && validTimestamp(f.Timestamp) &&
		(f.IDKind == jsonscan.None || f.IDKind == jsonscan.String && runesWithin(f.ID, maxIDLen)) &&
		(f.MetadataKind == jsonscan.None || f.MetadataKind == jsonscan.Object)
}

// validEventType checks minLength 1, maxLength 128 and the pattern
// ^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$ (all ASCII, so bytes are runes).
func validEventType(s string) bool {
	if len(s) == 0 || len(s) > maxEventTypeLen {
		return false
	}
	tokenLen := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			tokenLen++
		case c == '.' && tokenLen > 0:
			tokenLen = 0
		default:
			return false
		}
	}
	return tokenLen > 0
}

// runesWithin checks minLength 1 and maxLength max, counted in runes as
// jsonschema counts them.
func runesWithin(s string, max int) bool {
	return len(s) > 0 && (len(s) <= max || utf8.RuneCountInString(s) <= max)
}

// validTimestamp checks exclusiveMinimum 0 and maximum 253402300799999 on
// a well-formed, tame JSON number literal, exactly (jsonschema compares exact
// rationals): the literal is brought to 0.<digits> × 10^exp and compared
// digit by digit, so no float rounding and no big numbers are involved.
func validTimestamp(lit []byte) bool {
	if len(lit) == 0 || lit[0] == '-' || !tameNumber(lit) {
		return false // negative, or a zero: not > 0
	}
	i := 0
	for i < len(lit) && isDigit(lit[i]) {
		i++
	}
	intPart, frac := lit[:i], lit[:0]
	if i < len(lit) && lit[i] == '.' {
		j := i + 1
		for j < len(lit) && isDigit(lit[j]) {
			j++
		}
		frac, i = lit[i+1:j], j
	}
	exp := int64(0)
	if i < len(lit) { // 'e' or 'E'
		i++
		neg := lit[i] == '-'
		if lit[i] == '+' || lit[i] == '-' {
			i++
		}
		for ; i < len(lit); i++ {
			exp = min(exp*10+int64(lit[i]-'0'), 1<<40) // saturate; bodies are far shorter
		}
		if neg {
			exp = -exp
		}
	}
	// The significant digits are intPart followed by frac, without leading
	// and trailing zeros; the point sits after len(intPart) of them.
	leading := 0
	for leading < len(intPart)+len(frac) && digitAt(intPart, frac, leading) == '0' {
		leading++
	}
	n := len(intPart) + len(frac)
	if leading == n {
		return false // zero
	}
	for digitAt(intPart, frac, n-1) == '0' {
		n--
	}
	e := int64(len(intPart)-leading) + exp
	switch {
	case e < maxTimestampExp:
		return true
	case e > maxTimestampExp:
		return false
	}
	for k := 0; k < n-leading; k++ {
		if k == len(maxTimestampDigits) {
			return false // more significant digits than the maximum
		}
		if d, m := digitAt(intPart, frac, leading+k), maxTimestampDigits[k]; d != m {
			return d < m
		}
	}
	return true
}

// digitAt returns the k-th digit of a concatenated with b.
func digitAt(a, b []byte, k int) byte {
	if k < len(a) {
		return a[k]
	}
	return b[k-len(a)]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
