package rules

import (
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/kilnhq/kiln/schemas"
)

// fieldKind says where a field's value comes from.
type fieldKind uint8

const (
	fieldEventType fieldKind = iota + 1
	fieldUserID
	fieldID
	fieldTimestamp
	fieldMetadata
)

// Field is a dotted path into an event: "userId", "eventType", "id",
// "timestamp", or "metadata.<key>[.<key>…]" into the metadata object.
type Field struct {
	kind fieldKind
	path string // within metadata (a gjson path of plain keys)
	text string
}

// ParseField checks and compiles a field path.
func ParseField(s string) (Field, error) {
	switch s {
	case "eventType":
		return Field{kind: fieldEventType, text: s}, nil
	case "userId":
		return Field{kind: fieldUserID, text: s}, nil
	case "id":
		return Field{kind: fieldID, text: s}, nil
	case "timestamp":
		return Field{kind: fieldTimestamp, text: s}, nil
	}
	path, ok := strings.CutPrefix(s, "metadata.")
	if !ok {
		return Field{}, fmt.Errorf("unknown field %q (want userId, eventType, id, timestamp or metadata.<key>)", s)
	}
	for _, tok := range strings.Split(path, ".") {
		if !validToken(tok) {
			return Field{}, fmt.Errorf("field %q: key %q must be [A-Za-z0-9_-]+", s, tok)
		}
	}
	return Field{kind: fieldMetadata, path: path, text: s}, nil
}

// String returns the path as written.
func (f Field) String() string { return f.text }

// IsZero reports whether f is unset.
func (f Field) IsZero() bool { return f.kind == 0 }

// Fields reads field values from one event, decoding nothing: metadata
// lookups scan the raw JSON. The zero value is unusable; use Reset.
type Fields struct {
	ev      *schemas.Event
	meta    string
	hasMeta bool
}

// Reset points f at ev.
func (f *Fields) Reset(ev *schemas.Event) {
	f.ev, f.meta, f.hasMeta = ev, "", false
}

// Get returns the value of fl in the event; a missing value does not Exist.
func (f *Fields) Get(fl Field) gjson.Result {
	switch fl.kind {
	case fieldEventType:
		return gjson.Result{Type: gjson.String, Str: f.ev.EventType}
	case fieldUserID:
		return gjson.Result{Type: gjson.String, Str: f.ev.UserID}
	case fieldID:
		return gjson.Result{Type: gjson.String, Str: f.ev.ID}
	case fieldTimestamp:
		return gjson.Result{Type: gjson.Number, Num: float64(f.ev.Timestamp)}
	}
	if !f.hasMeta {
		f.meta, f.hasMeta = string(f.ev.Metadata), true
	}
	return gjson.Get(f.meta, fl.path)
}

// op is a condition's comparison.
type op uint8

const (
	opEquals op = iota + 1
	opIn
	opGt
	opGte
	opLt
	opLte
	opExists
)

// scalar is a value a field is compared with: a string, a number or a bool.
type scalar struct {
	typ gjson.Type // String, Number, True or False
	str string
	num float64
}

func (s scalar) equal(r gjson.Result) bool {
	switch s.typ {
	case gjson.String:
		return r.Type == gjson.String && r.Str == s.str
	case gjson.Number:
		return r.Type == gjson.Number && r.Num == s.num
	default:
		return r.Type == s.typ
	}
}

// Cond is one compiled metadata condition; a rule matches when all of its
// conditions hold.
type Cond struct {
	field  Field
	op     op
	value  scalar
	in     []scalar
	exists bool
}

// Match reports whether the condition holds for the event f reads.
// Comparisons are strict: a number never equals a string, and numeric
// comparisons hold only for JSON numbers.
func (c *Cond) Match(f *Fields) bool {
	r := f.Get(c.field)
	switch c.op {
	case opEquals:
		return c.value.equal(r)
	case opIn:
		for _, v := range c.in {
			if v.equal(r) {
				return true
			}
		}
		return false
	case opExists:
		return r.Exists() == c.exists
	}
	if r.Type != gjson.Number {
		return false
	}
	switch c.op {
	case opGt:
		return r.Num > c.value.num
	case opGte:
		return r.Num >= c.value.num
	case opLt:
		return r.Num < c.value.num
	default: // opLte
		return r.Num <= c.value.num
	}
}

// compileCond checks one condition; on error, field is the path suffix of
// the offending key (e.g. ".gt").
func compileCond(c condSpec) (cond Cond, field string, err error) {
	if c.Field == "" {
		return cond, ".field", fmt.Errorf("required: the value to test, such as userId or metadata.amount")
	}
	if cond.field, err = ParseField(c.Field); err != nil {
		return cond, ".field", err
	}
	switch len(c.ops) {
	case 0:
		return cond, "", fmt.Errorf("needs one operator: %s", strings.Join(opKeys(), ", "))
	case 1:
	default:
		return cond, "", fmt.Errorf("has several operators (%s); write one condition per operator", strings.Join(c.ops, ", "))
	}
	name := c.ops[0]
	field = "." + name
	var ok bool
	switch name {
	case "equals":
		cond.op = opEquals
		if cond.value, ok = toScalar(c.Equals); !ok {
			return cond, field, fmt.Errorf("must be a string, number or boolean, got %v", c.Equals)
		}
	case "in":
		cond.op = opIn
		if len(c.In) == 0 {
			return cond, field, fmt.Errorf("must be a non-empty list of strings, numbers or booleans")
		}
		for i, v := range c.In {
			s, ok := toScalar(v)
			if !ok {
				return cond, fmt.Sprintf("%s[%d]", field, i), fmt.Errorf("must be a string, number or boolean, got %v", v)
			}
			cond.in = append(cond.in, s)
		}
	case "exists":
		cond.op = opExists
		if cond.exists, ok = c.Exists.(bool); !ok {
			return cond, field, fmt.Errorf("must be true or false, got %v", c.Exists)
		}
	default:
		ops := map[string]struct {
			op op
			v  any
		}{"gt": {opGt, c.Gt}, "gte": {opGte, c.Gte}, "lt": {opLt, c.Lt}, "lte": {opLte, c.Lte}}
		o := ops[name]
		cond.op = o.op
		n, ok := toFloat(o.v)
		if !ok {
			return cond, field, fmt.Errorf("must be a number, got %v", o.v)
		}
		cond.value = scalar{typ: gjson.Number, num: n}
	}
	return cond, "", nil
}

func toScalar(v any) (scalar, bool) {
	switch x := v.(type) {
	case string:
		return scalar{typ: gjson.String, str: x}, true
	case bool:
		if x {
			return scalar{typ: gjson.True}, true
		}
		return scalar{typ: gjson.False}, true
	}
	if n, ok := toFloat(v); ok {
		return scalar{typ: gjson.Number, num: n}, true
	}
	return scalar{}, false
}
