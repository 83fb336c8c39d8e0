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
	for _, schema := range []string{
		`{"properties":{}}`,
		`{"type":["object"]}`,
		`{"type":"object","additionalProperties":false}`,
		`{"type":"object","patternProperties":{"^a":{}}}`,
		`{"type":"object","required":"a"}`,
		`{"type":"object","properties":{"a":{"type":"integer"}}}`,
		`{"type":"object","properties":{"a":{"minimum":0.1}}}`,
		`{"type":"object","properties":{"a":{"minimum":1e300}}}`,
		`{"type":"object","properties":{"a":{"maximum":1}}}`,
		`{"type":"object","properties":{"a":{"exclusiveMinimum":0}}}`,
		`{"type":"object","properties":{"a":{"minLength":1.5}}}`,
		`{"type":"object","properties":{"a":{"format":"no-such-format"}}}`,
		`{"type":"object","properties":{"a":{"enum":[1]}}}`,
		`{"type":"object","properties":{"a":{"$ref":"#"}}}`,
		`{"type":"object","properties":{"a":{"properties":{}}}}`,
		`{"type":"object","properties":{"a":true}}`,
	} {
		require.False(t, read(schema), schema)
	}
}
