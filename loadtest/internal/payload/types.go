package payload

import (
	"fmt"
	"strconv"
)

// TypePrefix starts the name of every type Types registers: their events'
// subjects are all under schemas.Subject(TypePrefix) + ".>".
const TypePrefix = "benchtypes"

// TypeSchema is one event type a schema-registry benchmark registers.
type TypeSchema struct {
	Name   string
	Schema []byte // a JSON Schema document for POST /schemas/{Name}
	nested bool
}

// Types returns n event types, alternately with a flat metadata schema
// (the form ingest checks on the JSON text) and a nested one (objects in
// arrays: checked by the JSON Schema validator on the decoded metadata).
func Types(n int) []TypeSchema {
	out := make([]TypeSchema, n)
	for i := range out {
		name := fmt.Sprintf("%s.t%02d", TypePrefix, i)
		nested := i%2 == 1
		metadata := flatMetadataSchema
		if nested {
			metadata = nestedMetadataSchema
		}
		out[i] = TypeSchema{Name: name, nested: nested, Schema: fmt.Appendf(nil, `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://schemas.kiln.dev/events/%s.json",
  "title": %q,
  "allOf": [{"$ref": "envelope.json"}],
  "required": ["metadata"],
  "properties": {"metadata": %s}
}`, name, name, metadata)}
	}
	return out
}

const flatMetadataSchema = `{
    "type": "object",
    "required": ["path", "durationMs"],
    "properties": {
      "path": {"type": "string", "minLength": 1, "maxLength": 2048},
      "referrer": {"type": "string", "maxLength": 2048},
      "durationMs": {"type": "number", "minimum": 0}
    }
  }`

const nestedMetadataSchema = `{
    "type": "object",
    "required": ["order"],
    "properties": {
      "order": {
        "type": "object",
        "required": ["id", "items"],
        "properties": {
          "id": {"type": "string", "minLength": 1},
          "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
          "items": {
            "type": "array", "minItems": 1, "maxItems": 50,
            "items": {
              "type": "object",
              "required": ["sku", "qty"],
              "properties": {
                "sku": {"type": "string", "minLength": 1},
                "qty": {"type": "integer", "minimum": 1},
                "price": {"type": "number", "minimum": 0}
              },
              "additionalProperties": false
            }
          }
        }
      }
    }
  }`

type flatMetadata = metadata

type nestedMetadata struct {
	Order order `json:"order"`
}

type order struct {
	Currency string `json:"currency"`
	ID       string `json:"id"`
	Items    []item `json:"items"`
}

type item struct {
	Price float64 `json:"price"`
	Qty   int     `json:"qty"`
	SKU   string  `json:"sku"`
}

// typedEvent is event i of the types, each valid against its type's schema.
func typedEvent(i int, types []TypeSchema) any {
	t := types[i%len(types)]
	e := newEvent(i)
	if !t.nested {
		return struct {
			EventType string       `json:"eventType"`
			UserID    string       `json:"userId"`
			Timestamp int64        `json:"timestamp"`
			Metadata  flatMetadata `json:"metadata"`
		}{t.Name, e.UserID, e.Timestamp, e.Metadata}
	}
	return struct {
		EventType string         `json:"eventType"`
		UserID    string         `json:"userId"`
		Timestamp int64          `json:"timestamp"`
		Metadata  nestedMetadata `json:"metadata"`
	}{t.Name, e.UserID, e.Timestamp, nestedMetadata{Order: order{Currency: "EUR", ID: "o-" + strconv.Itoa(i),
		Items: []item{{Price: 9.5, Qty: 1 + i%3, SKU: "sku-" + strconv.Itoa(i%users)}, {Price: 20, Qty: 2, SKU: "sku-x"}}}}}
}

// TypedSingles is Singles with body i of type i mod len(types).
func TypedSingles(n int, types []TypeSchema) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = mustMarshal(typedEvent(i, types))
	}
	return out
}

// TypedBatches is Batches with the events spread over types.
func TypedBatches(n, size int, types []TypeSchema) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		events := make([]any, size)
		for j := range events {
			events[j] = typedEvent(i*size+j, types)
		}
		out[i] = mustMarshal(events)
	}
	return out
}
