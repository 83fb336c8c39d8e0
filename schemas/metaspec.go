package schemas

import (
	"encoding/json"
	"math"
	"math/big"
	"regexp"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/kilnhq/kiln/schemas/jsonscan"
)

// metaSpec is a type schema's metadata schema when it has the simple form
// the fast path checks on the JSON text itself, without decoding it or
// running jsonschema: an object with "required" names, "properties" and
// "additionalProperties": false, whose property schemas use only type
// (string, number, integer, boolean, null, object, array), minLength,
// maxLength, minimum, pattern and format, and, nested, the same object
// keywords and items, minItems and maxItems (objects in arrays, up to
// maxSpecDepth). Any other keyword leaves the metadata to jsonschema.
type metaSpec struct {
	required map[string]int // name → bit in the seen mask
	props    map[string]*propSpec
	// closed: "additionalProperties": false, only props' names allowed.
	closed bool
}

// propSpec is the schema of one metadata property (or array item).
type propSpec struct {
	types kindSet
	// integer: a number must be an integer ("integer" without "number").
	integer              bool
	minLength, maxLength int // -1 when absent
	minimum              *big.Rat
	pattern              *regexp.Regexp
	format               func(any) bool
	// object holds the object keywords, checked on an object value (nil:
	// none).
	object *metaSpec
	// items is the schema of every element of an array value (nil: none);
	// minItems and maxItems are -1 when absent.
	items              *propSpec
	minItems, maxItems int
}

// maxSpecDepth bounds the nesting of the schemas the fast path reads.
const maxSpecDepth = 16

// kindSet is a set of jsonscan kinds.
type kindSet uint8

func (s kindSet) has(k jsonscan.Kind) bool { return s&(1<<k) != 0 }

var typeKinds = map[string]jsonscan.Kind{
	"null": jsonscan.Null, "boolean": jsonscan.Bool, "number": jsonscan.Number,
	"string": jsonscan.String, "array": jsonscan.Array, "object": jsonscan.Object,
}

const allKinds = kindSet(1<<jsonscan.Null | 1<<jsonscan.Bool | 1<<jsonscan.Number |
	1<<jsonscan.String | 1<<jsonscan.Array | 1<<jsonscan.Object)

// parseMetaSpec reads a metadata schema; ok is false for a form it does
// not handle.
func parseMetaSpec(schema map[string]any) (*metaSpec, bool) {
	m := &metaSpec{required: map[string]int{}, props: map[string]*propSpec{}}
	if schema["type"] != "object" {
		return nil, false
	}
	for k, v := range schema {
		switch {
		case k == "type", isAnnotation(k):
		case !m.parseKeyword(k, v, 0):
			return nil, false
		}
	}
	return m, true
}

// parseKeyword reads one object keyword of a schema at depth; false for a
// keyword, or a value, the fast path does not handle.
func (m *metaSpec) parseKeyword(k string, v any, depth int) bool {
	switch k {
	case "required":
		req, ok := v.([]any)
		if !ok || len(req) > 64 {
			return false
		}
		for _, r := range req {
			name, ok := r.(string)
			if !ok {
				return false
			}
			if _, dup := m.required[name]; !dup {
				m.required[name] = len(m.required)
			}
		}
	case "properties":
		props, ok := v.(map[string]any)
		if !ok {
			return false
		}
		for name, p := range props {
			ps, ok := parsePropSpec(p, depth+1)
			if !ok {
				return false
			}
			m.props[name] = ps
		}
	case "additionalProperties":
		if allowed, ok := v.(bool); !ok || allowed {
			return false // a schema, or true (the default: leave it out)
		}
		m.closed = true
	default:
		return false
	}
	return true
}

func parsePropSpec(v any, depth int) (*propSpec, bool) {
	schema, ok := v.(map[string]any)
	if !ok || depth > maxSpecDepth {
		return nil, false
	}
	p := &propSpec{types: allKinds, minLength: -1, maxLength: -1, minItems: -1, maxItems: -1}
	for k, v := range schema {
		switch {
		case isAnnotation(k):
		case k == "type":
			names, isList := v.([]any)
			if !isList {
				names = []any{v}
			}
			p.types = 0
			integer, number := false, false
			for _, n := range names {
				name, _ := n.(string)
				if name == "integer" {
					integer = true
					p.types |= 1 << jsonscan.Number
					continue
				}
				kind, ok := typeKinds[name]
				if !ok {
					return nil, false // not a type name
				}
				number = number || kind == jsonscan.Number
				p.types |= 1 << kind
			}
			p.integer = integer && !number
		case k == "required" || k == "properties" || k == "additionalProperties":
			if p.object == nil {
				p.object = &metaSpec{required: map[string]int{}, props: map[string]*propSpec{}}
			}
			if !p.object.parseKeyword(k, v, depth) {
				return nil, false
			}
		case k == "items":
			if p.items, ok = parsePropSpec(v, depth+1); !ok {
				return nil, false // a boolean schema, or a form not handled
			}
		case k == "minItems" || k == "maxItems":
			n, ok := smallInt(v)
			if !ok {
				return nil, false
			}
			if k == "minItems" {
				p.minItems = n
			} else {
				p.maxItems = n
			}
		case k == "minLength" || k == "maxLength":
			n, ok := smallInt(v)
			if !ok {
				return nil, false
			}
			if k == "minLength" {
				p.minLength = n
			} else {
				p.maxLength = n
			}
		case k == "minimum":
			// Integers only: they are exact as float64 (a fraction's
			// decimal text, which jsonschema reads, is not its float).
			f, ok := v.(float64)
			if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
				return nil, false
			}
			p.minimum = new(big.Rat).SetInt64(int64(f))
		case k == "pattern":
			s, ok := v.(string)
			if !ok {
				return nil, false
			}
			re, err := regexp.Compile(s)
			if err != nil {
				return nil, false
			}
			p.pattern = re
		case k == "format":
			s, _ := v.(string)
			if p.format = jsonschema.Formats[s]; p.format == nil {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	return p, true
}

// smallInt reads a non-negative integer keyword value decoded by
// encoding/json into a float64.
func smallInt(v any) (int, bool) {
	f, ok := v.(float64)
	if !ok || f < 0 || f > 1<<30 || f != float64(int(f)) {
		return 0, false
	}
	return int(f), true
}

// valid reports whether the metadata object raw (well-formed, with every
// number tame) satisfies the spec. A key given more than once must be
// valid in every copy, which is stricter than the decoded last copy that
// jsonschema sees, never looser.
func (m *metaSpec) valid(raw []byte) bool {
	var seen uint64
	i := jsonscan.SkipSpace(raw, 1)
	for i < len(raw) && raw[i] != '}' {
		keyEnd, simple, _ := jsonscan.ScanString(raw, i)
		name := raw[i+1 : keyEnd-1]
		if !simple {
			name = []byte(jsonscan.DecodeString(raw[i:keyEnd], false))
		}
		i = jsonscan.SkipSpace(raw, jsonscan.SkipSpace(raw, keyEnd)+1) // past ':'
		end, kind, _ := jsonscan.Value(raw, i)
		if bit, ok := m.required[string(name)]; ok {
			seen |= 1 << bit
		}
		p, ok := m.props[string(name)]
		switch {
		case ok && !p.valid(raw[i:end], kind):
			return false
		case !ok && m.closed:
			return false
		}
		if i = jsonscan.SkipSpace(raw, end); raw[i] == ',' {
			i = jsonscan.SkipSpace(raw, i+1)
		}
	}
	return seen == 1<<len(m.required)-1
}

// valid checks one property value, its JSON text tok of the given kind.
func (p *propSpec) valid(tok []byte, kind jsonscan.Kind) bool {
	if !p.types.has(kind) || p.format != nil && kind != jsonscan.String {
		return false // format on other kinds: left to jsonschema
	}
	switch kind {
	case jsonscan.String:
		return p.validString(tok)
	case jsonscan.Number:
		return p.validNumber(tok)
	case jsonscan.Object:
		return p.object == nil || p.object.valid(tok)
	case jsonscan.Array:
		return p.validArray(tok)
	}
	return true
}

// validNumber checks a number literal: integer, then minimum, exactly as
// jsonschema does on its big.Rat (plain integer literals without one).
func (p *propSpec) validNumber(tok []byte) bool {
	n, plain := plainInt(tok)
	if p.integer && !plain {
		r, ok := new(big.Rat).SetString(string(tok))
		if !ok || !r.IsInt() {
			return false
		}
	}
	switch {
	case p.minimum == nil:
		return true
	case p.minimum.Sign() == 0:
		return nonNegative(tok)
	case plain && p.minimum.IsInt() && p.minimum.Num().IsInt64():
		return n >= p.minimum.Num().Int64()
	}
	r, ok := new(big.Rat).SetString(string(tok))
	return ok && r.Cmp(p.minimum) >= 0
}

// plainInt reads a number literal of at most 18 digits without fraction
// or exponent; plain is false for any other.
func plainInt(tok []byte) (n int64, plain bool) {
	digits := tok
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if tok[0] == '-' {
		n = -n
	}
	return n, true
}

// validArray checks an array value: its length, and each element against
// items.
func (p *propSpec) validArray(tok []byte) bool {
	if p.items == nil && p.minItems < 0 && p.maxItems < 0 {
		return true
	}
	count := 0
	i := jsonscan.SkipSpace(tok, 1)
	for i < len(tok) && tok[i] != ']' {
		end, kind, _ := jsonscan.Value(tok, i)
		if p.items != nil && !p.items.valid(tok[i:end], kind) {
			return false
		}
		count++
		if i = jsonscan.SkipSpace(tok, end); tok[i] == ',' {
			i = jsonscan.SkipSpace(tok, i+1)
		}
	}
	return count >= p.minItems && (p.maxItems < 0 || count <= p.maxItems)
}

func (p *propSpec) validString(tok []byte) bool {
	if p.minLength < 0 && p.maxLength < 0 && p.pattern == nil && p.format == nil {
		return true
	}
	_, simple, _ := jsonscan.ScanString(tok, 0)
	var s []byte
	if simple {
		s = tok[1 : len(tok)-1]
	} else {
		s = []byte(jsonscan.DecodeString(tok, false))
	}
	if p.minLength >= 0 || p.maxLength >= 0 {
		n := utf8.RuneCount(s)
		if n < p.minLength || p.maxLength >= 0 && n > p.maxLength {
			return false
		}
	}
	if p.pattern != nil && !p.pattern.Match(s) {
		return false
	}
	return p.format == nil || p.format(string(s))
}

// nonNegative reports whether a number literal is >= 0 (-0 included).
func nonNegative(lit []byte) bool {
	if lit[0] != '-' {
		return true
	}
	for _, c := range lit {
		if c >= '1' && c <= '9' {
			return false
		}
		if c == 'e' || c == 'E' {
			break
		}
	}
	return true
}

// numbersTame reports whether every number in the well-formed JSON text b
// is tame (see numbers.go), without decoding it.
func numbersTame(b []byte) bool {
	for i := 0; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			i, _, _ = jsonscan.ScanString(b, i)
		case c == '-' || c >= '0' && c <= '9':
			end, _, _ := jsonscan.Value(b, i)
			if !tameNumber(b[i:end]) {
				return false
			}
			i = end
		default:
			i++
		}
	}
	return true
}

// metaSpecOf parses the metadata schema of a type schema document.
func metaSpecOf(raw []byte) *metaSpec {
	var s struct {
		Properties struct {
			Metadata map[string]any `json:"metadata"`
		} `json:"properties"`
	}
	if json.Unmarshal(raw, &s) != nil || s.Properties.Metadata == nil {
		return nil
	}
	m, ok := parseMetaSpec(s.Properties.Metadata)
	if !ok {
		return nil
	}
	return m
}
