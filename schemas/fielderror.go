package schemas

import (
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// FieldError is one reason an event is invalid. Field is a dotted path into
// the event ("metadata.amount"; array items as "items.2"), empty for the
// event as a whole.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// FieldErrors flattens a schema validation failure into field-level errors,
// one per failing leaf, sorted by field and de-duplicated.
func FieldErrors(ve *jsonschema.ValidationError) []FieldError {
	var out []FieldError
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		out = append(out, leafErrors(e)...)
	}
	walk(ve)
	slices.SortFunc(out, func(a, b FieldError) int {
		if c := strings.Compare(a.Field, b.Field); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	return slices.Compact(out)
}

// leafErrors turns one failing keyword into field errors. "required" and
// "additionalProperties" fail on the parent object but name child fields, so
// they are split into one error per named field.
func leafErrors(e *jsonschema.ValidationError) []FieldError {
	parent := pointerToField(e.InstanceLocation)
	keyword := e.KeywordLocation[strings.LastIndex(e.KeywordLocation, "/")+1:]
	switch keyword {
	case "required":
		var out []FieldError
		for _, name := range quotedNames(e.Message) {
			out = append(out, FieldError{Field: joinField(parent, name), Message: "is required"})
		}
		return out
	case "additionalProperties":
		var out []FieldError
		for _, name := range quotedNames(e.Message) {
			out = append(out, FieldError{Field: joinField(parent, name), Message: "is not an allowed field"})
		}
		return out
	case "pattern":
		if parent == "eventType" {
			return []FieldError{{Field: parent, Message: "must be dot-separated tokens of letters, digits, '_' or '-' (e.g. order.created)"}}
		}
	}
	return []FieldError{{Field: parent, Message: e.Message}}
}

// quotedNames extracts the 'quoted' property names from messages such as
// "missing properties: 'userId', 'timestamp'".
func quotedNames(msg string) []string {
	var names []string
	for {
		start := strings.IndexByte(msg, '\'')
		if start < 0 {
			return names
		}
		end := strings.IndexByte(msg[start+1:], '\'')
		if end < 0 {
			return names
		}
		names = append(names, msg[start+1:start+1+end])
		msg = msg[start+end+2:]
	}
}

// pointerToField converts a JSON Pointer ("/metadata/amount") to a dotted
// field path ("metadata.amount").
func pointerToField(ptr string) string {
	ptr = strings.TrimPrefix(ptr, "/")
	if ptr == "" {
		return ""
	}
	parts := strings.Split(ptr, "/")
	for i, p := range parts {
		parts[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(p)
	}
	return strings.Join(parts, ".")
}

func joinField(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}
