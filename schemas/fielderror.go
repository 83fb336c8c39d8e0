package schemas

import (
	"slices"
	"strconv"
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
// one per failing leaf, sorted by field and de-duplicated. The fields named
// by "required" and "additionalProperties" are read from jsonschema's
// messages, which cannot render every name unambiguously; the Registry
// resolves them against the schema and the event instead.
func FieldErrors(ve *jsonschema.ValidationError) []FieldError { return fieldErrors(ve, nil) }

// nameResolver returns the fields a "required" or "additionalProperties"
// failure is about; ok false leaves them to be read from the message.
type nameResolver func(e *jsonschema.ValidationError, keyword string) (names []string, ok bool)

func fieldErrors(ve *jsonschema.ValidationError, resolve nameResolver) []FieldError {
	var out []FieldError
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		out = append(out, leafErrors(e, resolve)...)
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
func leafErrors(e *jsonschema.ValidationError, resolve nameResolver) []FieldError {
	parent := pointerToField(e.InstanceLocation)
	keyword := e.KeywordLocation[strings.LastIndex(e.KeywordLocation, "/")+1:]
	names := func() []string {
		if resolve != nil {
			if names, ok := resolve(e, keyword); ok {
				return names
			}
		}
		return quotedNames(e.Message)
	}
	switch keyword {
	case "required":
		var out []FieldError
		for _, name := range names() {
			out = append(out, FieldError{Field: joinField(parent, name), Message: "is required"})
		}
		return out
	case "additionalProperties":
		var out []FieldError
		for _, name := range names() {
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

// quotedNames extracts the quoted property names from messages such as
// "missing properties: 'userId', 'timestamp'". jsonschema quotes a name as
// Go's %q does, then unescapes double quotes and escapes single quotes
// (its quote function); this undoes that. Some names (a lone backslash)
// come out ambiguous, which is why the Registry resolves names instead.
func quotedNames(msg string) []string {
	var names []string
	for i := 0; i < len(msg); i++ {
		if msg[i] != '\'' {
			continue
		}
		var b strings.Builder
		b.WriteByte('"')
		j := i + 1
		for ; j < len(msg) && msg[j] != '\''; j++ {
			switch c := msg[j]; {
			case c == '\\' && j+1 < len(msg) && msg[j+1] == '\'':
				b.WriteByte('\'')
				j++
			case c == '\\' && j+1 < len(msg):
				b.WriteString(msg[j : j+2])
				j++
			case c == '"':
				b.WriteString(`\"`)
			default:
				b.WriteByte(c)
			}
		}
		if j >= len(msg) {
			return names
		}
		b.WriteByte('"')
		name, err := strconv.Unquote(b.String())
		if err != nil {
			name = msg[i+1 : j]
		}
		names = append(names, name)
		i = j
	}
	return names
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
