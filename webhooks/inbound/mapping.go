package inbound

import (
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/kilnhq/kiln/schemas/problem"
)

// Map turns a verified payload into a POST /events object: the type (with
// the provider's prefix) as eventType, the data object as metadata, the
// user id from the first mapped path holding a non-empty string (else the
// provider name), the webhook's timestamp, and id as the event id.
func Map(p *Provider, id string, ts time.Time, body []byte) ([]byte, *problem.Details) {
	if !gjson.ValidBytes(body) {
		return nil, problem.New(400, "malformed-json", "Malformed JSON", "the webhook body is not well-formed JSON")
	}
	// gjson takes invalid UTF-8 in strings, and encoding it again would
	// replace it with U+FFFD: refused, as POST /events refuses it.
	if !utf8.Valid(body) {
		return nil, fieldProblem("", "must be valid UTF-8")
	}
	doc := gjson.ParseBytes(body)
	if !doc.IsObject() {
		return nil, fieldProblem("", "must be a JSON object")
	}
	typ := doc.Get(p.Mapping.EventType)
	if typ.Type != gjson.String || typ.Str == "" {
		return nil, fieldProblem(p.Mapping.EventType, "is required and must be a non-empty string")
	}
	user := p.Name
	for _, path := range p.Mapping.UserID {
		if v := doc.Get(path); v.Type == gjson.String && v.Str != "" {
			user = v.Str
			break
		}
	}
	out := make([]byte, 0, len(body)+len(id)+len(user)+96)
	out = append(out, `{"id":`...)
	out = appendJSONString(out, id)
	out = append(out, `,"eventType":`...)
	out = appendJSONString(out, p.Mapping.EventTypePrefix+typ.Str)
	out = append(out, `,"userId":`...)
	out = appendJSONString(out, user)
	out = append(out, `,"timestamp":`...)
	out = append(out, timestampMillis(ts)...)
	if data := doc.Get(p.Mapping.Metadata); data.Exists() {
		if !data.IsObject() {
			return nil, fieldProblem(p.Mapping.Metadata, "must be an object")
		}
		out = append(out, `,"metadata":`...)
		out = append(out, data.Raw...)
	}
	return append(out, '}'), nil
}

func fieldProblem(field, msg string) *problem.Details {
	return problem.Invalid("the webhook payload is not a valid event", []problem.FieldError{{Field: field, Message: msg}})
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}
