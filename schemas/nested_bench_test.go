package schemas_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
)

// nestedTypeSchema is loadtest's nested schema (payload.Types, the odd
// types of ingest_types): objects in an array, which the fast path cannot
// check on the JSON text, so the JSON Schema validator checks the decoded
// metadata of every event.
const nestedTypeSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://schemas.kiln.dev/events/bench.nested.json",
  "title": "bench.nested",
  "allOf": [{"$ref": "envelope.json"}],
  "required": ["metadata"],
  "properties": {"metadata": {
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
  }}
}`

// nestedEvent is an event as loadtest's typedEvent writes it.
const nestedEvent = `{"eventType":"bench.nested","userId":"bench-user-3","timestamp":1700000000003,` +
	`"metadata":{"order":{"currency":"EUR","id":"o-3","items":[{"price":9.5,"qty":1,"sku":"sku-3"},{"price":20,"qty":2,"sku":"sku-x"}]}}}`

// nestedRegistry is the embedded schemas and bench.nested.
func nestedRegistry(tb testing.TB) *schemas.Registry {
	docs, err := schemas.Embedded()
	require.NoError(tb, err)
	docs["bench.nested"] = []byte(nestedTypeSchema)
	reg, err := schemas.Compile(docs)
	require.NoError(tb, err)
	return reg
}

func nested(metadata string) string {
	return `{"eventType":"bench.nested","userId":"u1","timestamp":1700000000000,"metadata":` + metadata + `}`
}

func nestedCases() []fastPathCase {
	item := func(s string) string { return nested(`{"order":{"id":"o","items":[` + s + `]}}`) }
	return []fastPathCase{
		{"loadtest event", nestedEvent, true},
		{"one item", item(`{"sku":"a","qty":1}`), true},
		{"50 items", item(strings.TrimSuffix(strings.Repeat(`{"sku":"a","qty":3,"price":0},`, 50), ",")), true},
		{"qty 1.0", item(`{"sku":"a","qty":1.0}`), true},
		{"qty 1e2", item(`{"sku":"a","qty":1e2}`), true},
		{"qty 20E-1", item(`{"sku":"a","qty":20E-1}`), true},
		{"price -0", item(`{"sku":"a","qty":1,"price":-0}`), true},
		{"escaped names", nested(`{"\u006frder":{"id":"o","\u0069tems":[{"s\u006bu":"a","qty":1}]}}`), true},
		{"whitespace", nested(` { "order" : { "id" : "o" , "items" : [ { "sku" : "a" , "qty" : 1 } , { "sku":"b","qty":2 } ] } } `), true},
		{"unknown order member", nested(`{"order":{"id":"o","x":[1,{}],"items":[{"sku":"a","qty":1}]}}`), true},
		{"repeated key", item(`{"sku":"a","qty":1,"qty":2}`), true},
		{"currency", nested(`{"order":{"id":"o","currency":"EUR","items":[{"sku":"a","qty":1}]}}`), true},
		{"no items", item(``), false},
		{"51 items", item(strings.TrimSuffix(strings.Repeat(`{"sku":"a","qty":3},`, 51), ",")), false},
		{"qty 0", item(`{"sku":"a","qty":0}`), false},
		{"qty 1.5", item(`{"sku":"a","qty":1.5}`), false},
		{"qty 15e-1", item(`{"sku":"a","qty":15e-1}`), false},
		{"qty -3", item(`{"sku":"a","qty":-3}`), false},
		{"qty string", item(`{"sku":"a","qty":"1"}`), false},
		{"price -1", item(`{"sku":"a","qty":1,"price":-1}`), false},
		{"extra item member", item(`{"sku":"a","qty":1,"x":null}`), false},
		{"no sku", item(`{"qty":1}`), false},
		{"empty sku", item(`{"sku":"","qty":1}`), false},
		{"item not object", item(`1`), false},
		{"items not array", nested(`{"order":{"id":"o","items":{}}}`), false},
		{"no order", nested(`{}`), false},
		{"order not object", nested(`{"order":[]}`), false},
		{"bad currency", nested(`{"order":{"id":"o","currency":"eur","items":[{"sku":"a","qty":1}]}}`), false},
		{"repeated key, one bad", item(`{"sku":"a","qty":0,"qty":2}`), false},
		{"huge qty", item(`{"sku":"a","qty":123456789012345678901234567890}`), true},
		{"huge fraction", item(`{"sku":"a","qty":12345678901234567890123456789.5}`), false},
	}
}

// The fast path checks the nested schema on the JSON text and agrees with
// the JSON Schema on every case (and on what the fuzzer finds).
func TestFastPathNestedAgreesWithSchema(t *testing.T) {
	reg := nestedRegistry(t)
	require.True(t, reg.ScansMetadata("bench.nested"), "the fast path checks nested metadata itself")
	for _, tc := range nestedCases() {
		t.Run(tc.name, func(t *testing.T) {
			fast := checkFastPath(t, reg, []byte(tc.body))
			require.Equal(t, tc.fast, fast, "fast path verdict")
		})
	}
}

func FuzzFastPathNestedAgreesWithSchema(f *testing.F) {
	for _, tc := range nestedCases() {
		f.Add([]byte(tc.body))
	}
	reg := nestedRegistry(f)
	f.Fuzz(func(t *testing.T, b []byte) { checkFastPath(t, reg, b) })
}

// BenchmarkValidateFieldsNested is ValidateFields (what ingest does per
// event) for a registered type with a nested metadata schema.
func BenchmarkValidateFieldsNested(b *testing.B) {
	reg := nestedRegistry(b)
	raw := []byte(nestedEvent)
	b.ReportAllocs()
	for b.Loop() {
		f, ok := schemas.ReadEvent(raw)
		if !ok {
			b.Fatal("not read")
		}
		if errs := reg.ValidateFields(&f, raw); errs != nil {
			b.Fatal(errs)
		}
	}
}
