package schemas

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMetaSpecLeavesOtherFormsToJSONSchema: a metadata schema with any
// keyword or value the fast path does not check exactly is not read.
func TestMetaSpecLeavesOtherFormsToJSONSchema(t *testing.T) {
	read := func(schema string) bool {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(schema), &m))
		_, ok := parseMetaSpec(m)
		return ok
	}
	require.True(t, read(`{"type":"object","title":"x","required":["a"],"properties":{"a":{"type":["string","null"],"minLength":1,"maxLength":3,"pattern":"^a","format":"email","description":"d"},"b":{"minimum":-7}}}`))
	// Nested objects and arrays of them (issue 24: loadtest's nested types).
	require.True(t, read(`{"type":"object","additionalProperties":false}`))
	require.True(t, read(`{"type":"object","properties":{"a":{"type":"integer"}}}`))
	require.True(t, read(`{"type":"object","properties":{"a":{"properties":{}}}}`))
	require.True(t, read(`{"type":"object","properties":{"o":{"type":"object","required":["items"],"properties":{"items":{"type":"array","minItems":1,"maxItems":5,`+
		`"items":{"type":"object","required":["q"],"properties":{"q":{"type":["integer","null"],"minimum":1}},"additionalProperties":false}}}}}}`))
	deep := `{"type":"string"}`
	for range maxSpecDepth - 1 {
		deep = `{"items":` + deep + `}`
	}
	require.True(t, read(`{"type":"object","properties":{"a":`+deep+`}}`))
	for _, schema := range []string{
		`{"properties":{}}`,
		`{"type":["object"]}`,
		`{"type":"object","additionalProperties":true}`,
		`{"type":"object","additionalProperties":{"type":"string"}}`,
		`{"type":"object","patternProperties":{"^a":{}}}`,
		`{"type":"object","required":"a"}`,
		`{"type":"object","properties":{"a":{"type":"int"}}}`,
		`{"type":"object","properties":{"a":{"items":false}}}`,
		`{"type":"object","properties":{"a":{"items":[{}]}}}`,
		`{"type":"object","properties":{"a":{"prefixItems":[{}]}}}`,
		`{"type":"object","properties":{"a":{"uniqueItems":true}}}`,
		`{"type":"object","properties":{"a":{"contains":{}}}}`,
		`{"type":"object","properties":{"a":{"minItems":-1}}}`,
		`{"type":"object","properties":{"a":{"items":{"maxProperties":1}}}}`,
		`{"type":"object","properties":{"a":{"items":{"additionalProperties":false,"unevaluatedProperties":false}}}}`,
		`{"type":"object","properties":{"a":{"items":` + deep + `}}}`,
		`{"type":"object","properties":{"a":{"minimum":0.1}}}`,
		`{"type":"object","properties":{"a":{"minimum":1e300}}}`,
		`{"type":"object","properties":{"a":{"maximum":1}}}`,
		`{"type":"object","properties":{"a":{"exclusiveMinimum":0}}}`,
		`{"type":"object","properties":{"a":{"minLength":1.5}}}`,
		`{"type":"object","properties":{"a":{"format":"no-such-format"}}}`,
		`{"type":"object","properties":{"a":{"enum":[1]}}}`,
		`{"type":"object","properties":{"a":{"$ref":"#"}}}`,
		`{"type":"object","properties":{"a":{"properties":{"b":{"$ref":"#"}}}}}`,
		`{"type":"object","properties":{"a":true}}`,
	} {
		require.False(t, read(schema), schema)
	}
}
