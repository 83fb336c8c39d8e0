package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas/problem"
)

// TestAnswersEncodeLikeEncodingJSON holds the hand-written answer encoders
// to json.Marshal, byte for byte.
func TestAnswersEncodeLikeEncodingJSON(t *testing.T) {
	one := 1
	for _, r := range []SingleResponse{
		{Accepted: true, ID: "01JABC", Seq: 7},
		{Accepted: true, ID: `x<y>&"é😀` + "\u2028\n\x01\xff", Seq: 0, Duplicate: true},
		{Accepted: true, ID: "q", Quarantined: true},
		{},
	} {
		want, err := json.Marshal(r)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendSingle(nil, &r)))
	}
	for _, r := range []BatchResponse{
		{},
		{Results: []ItemResult{}},
		{Accepted: 1, Duplicates: 1, Rejected: 1, Failed: 1, Results: []ItemResult{
			{Index: 0, ID: "a<b>", Seq: 3, valid: true},
			{Index: 1, ID: "dup\u2029", Seq: 2, Duplicate: true},
			{Index: 2, Error: problem.Invalid("bad", []problem.FieldError{{Index: &one, Field: "userId", Message: "is required"}})},
			{Index: 3, ID: "x", Error: problem.Unavailable("try again", 2)},
			{Index: 4},
		}},
		{Accepted: 1, Quarantined: 1, Results: []ItemResult{
			{Index: 0, ID: "a", Seq: 3, valid: true},
			{Index: 1, ID: "q", Quarantined: true},
		}},
	} {
		want, err := json.Marshal(r)
		require.NoError(t, err)
		got, err := appendBatch([]byte{}, &r)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	}
}
