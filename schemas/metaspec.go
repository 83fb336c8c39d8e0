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
// running jsonschema: an object with "required" names and "properties"
// whose schemas use only type (string, number, boolean, null, object,
// array), minLength, maxLength, minimum, pattern and format. Any other
// keyword leaves the metadata to jsonschema.
type metaSpec struct {
	required map[string]int // name → bit in the seen mask
	props    map[string]*propSpec
}

// propSpec is the schema of one metadata property.
type propSpec struct {
	types                kindSet
	minLength, maxLength int // -1 when absent
	minimum              *big.Rat
	pattern              *regexp.Regexp
	format               func(any) bool
}

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
		case k == "required":
			req, ok := v.([]any)
			if !ok || len(req) > 64 {
				return nil, false
			}
			for _, r := range req {
				name, ok := r.(string)
				if !ok {
					return nil, false
				}
				if _, dup := m.required[name]; !dup {
					m.required[name] = len(m.required)
				}
			}
		case k == "properties":
			props, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			for name, p := range props {
				ps, ok := parsePropSpec(p)
				if !ok {
					return nil, false
				}
				m.props[name] = ps
			}
		default:
			return nil, false
		}
	}
	return m, true
}

func parsePropSpec(v any) (*propSpec, bool) {
	schema, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	p := &propSpec{types: allKinds, minLength: -1, maxLength: -1}
	for k, v := range schema {
		switch {
		case isAnnotation(k):
		case k == "type":
			names, isList := v.([]any)
			if !isList {
				names = []any{v}
			}
			p.types = 0
			for _, n := range names {
				name, _ := n.(string)
				kind, ok := typeKinds[name]
				if !ok {
					return nil, false // "integer" or not a type name
				}
				p.types |= 1 << kind
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
		if p, ok := m.props[string(name)]; ok && !p.valid(raw[i:end], kind) {
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
		if p.minimum == nil {
			return true
		}
		if p.minimum.Sign() == 0 {
			return nonNegative(tok)
		}
		r, ok := new(big.Rat).SetString(string(tok))
		return ok && r.Cmp(p.minimum) >= 0
	}
	return true
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
