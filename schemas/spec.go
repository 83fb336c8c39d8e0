package schemas

import (
	"encoding/json"
	"reflect"

	"github.com/kilnhq/kiln/schemas/jsonscan"
)

// envelopeSpec is envelope.json without its annotations: the schema the
// fast path implements. The registry compares the embedded envelope.json
// with it at start-up and uses the fast path only when they are the same.
const envelopeSpec = `{
  "type": "object",
  "required": ["eventType", "userId", "timestamp"],
  "additionalProperties": false,
  "properties": {
    "id": {"type": "string", "minLength": 1, "maxLength": 128},
    "eventType": {"type": "string", "minLength": 1, "maxLength": 128,
      "pattern": "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$"},
    "userId": {"type": "string", "minLength": 1, "maxLength": 256},
    "timestamp": {"type": "number", "exclusiveMinimum": 0, "maximum": 253402300799999},
    "metadata": {"type": "object"}
  }
}`

// draft2020 is the only $schema the fast path reads schemas in.
const draft2020 = "https://json-schema.org/draft/2020-12/schema"

// isAnnotation reports whether a schema keyword has no effect on validation.
func isAnnotation(keyword string) bool {
	switch keyword {
	case "$schema", "$id", "$comment", "title", "description", "examples":
		return true
	}
	return false
}

// implementsEnvelope reports whether the envelope schema raw is envelopeSpec
// apart from annotations (on the schema and on each property's schema).
func implementsEnvelope(raw []byte) bool {
	var got, want map[string]any
	if json.Unmarshal(raw, &got) != nil || json.Unmarshal([]byte(envelopeSpec), &want) != nil {
		return false
	}
	if got["$schema"] != draft2020 {
		return false // another draft may read the same keywords differently
	}
	stripAnnotations(got)
	if props, ok := got["properties"].(map[string]any); ok {
		for _, p := range props {
			if p, ok := p.(map[string]any); ok {
				stripAnnotations(p)
			}
		}
	}
	return reflect.DeepEqual(got, want)
}

func stripAnnotations(schema map[string]any) {
	for k := range schema {
		if isAnnotation(k) {
			delete(schema, k)
		}
	}
}

// typeShape reads a type schema of the form the fast path handles: the
// envelope (allOf: [{$ref: envelope.json}]), at most "required":
// ["metadata"], and at most a schema for metadata in "properties". ok is
// false for any other form; such a type is always validated by jsonschema.
func typeShape(name string, raw []byte) (requireMetadata, metadataSchema, ok bool) {
	var s map[string]any
	if json.Unmarshal(raw, &s) != nil {
		return false, false, false
	}
	for k, v := range s {
		switch {
		case k == "$id":
			if v != schemaBaseURL+name {
				return false, false, false
			}
		case k == "$schema":
			if v != draft2020 {
				return false, false, false
			}
		case isAnnotation(k):
		case k == "allOf":
			all, _ := v.([]any)
			if len(all) != 1 || !reflect.DeepEqual(all[0], map[string]any{"$ref": envelopeFile}) {
				return false, false, false
			}
		case k == "required":
			req, _ := v.([]any)
			for _, r := range req {
				if r != "metadata" {
					return false, false, false
				}
			}
			requireMetadata = len(req) > 0
		case k == "properties":
			props, _ := v.(map[string]any)
			for p := range props {
				if p != "metadata" {
					return false, false, false
				}
			}
			metadataSchema = len(props) > 0
		default:
			return false, false, false
		}
	}
	_, hasAllOf := s["allOf"]
	return requireMetadata, metadataSchema, hasAllOf
}

// fieldsOf reads the envelope members of a decoded event (encoding/json
// with UseNumber). ok is false when doc holds a value the fast path does
// not read (e.g. a float64 number); jsonschema then decides alone.
func fieldsOf(doc any) (f EventFields, metadata any, ok bool) {
	m, isMap := doc.(map[string]any)
	if !isMap {
		return f, nil, false
	}
	f.Kind = jsonscan.Object
	for k, v := range m {
		kind := jsonscan.KindOf(v)
		if kind == jsonscan.None {
			return f, nil, false
		}
		s, _ := v.(string)
		switch k {
		case "eventType":
			f.EventType, f.EventTypeKind = s, kind
		case "userId":
			f.UserID, f.UserIDKind = s, kind
		case "id":
			f.ID, f.IDKind = s, kind
		case "timestamp":
			if n, isNum := v.(json.Number); isNum {
				f.Timestamp = []byte(n)
				if k, ok := jsonscan.Whole(f.Timestamp); !ok || k != jsonscan.Number {
					return f, nil, false
				}
			}
			f.TimestampKind = kind
		case "metadata":
			metadata, f.MetadataKind = v, kind
		default:
			f.Unknown = true
		}
	}
	return f, metadata, true
}
