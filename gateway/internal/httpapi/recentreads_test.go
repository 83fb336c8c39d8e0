package httpapi

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
)

// Two GET /events queries share a cache read only when they are the same
// query: every field of readmodel.Query is in the key, and field
// boundaries cannot be forged by the values.
func TestQueryKeyNamesTheWholeQuery(t *testing.T) {
	base := readmodel.Query{Types: []string{"a"}, UserID: "u1", From: 1, To: 2, Limit: 50, After: &readmodel.Cursor{Timestamp: 3, Seq: 4}}
	same := base
	same.Types = []string{"a"}
	same.After = &readmodel.Cursor{Timestamp: 3, Seq: 4}
	require.Equal(t, queryKey(base), queryKey(same))

	others := map[string]func(q *readmodel.Query){
		"another type":       func(q *readmodel.Query) { q.Types = []string{"b"} },
		"a second type":      func(q *readmodel.Query) { q.Types = []string{"a", "b"} },
		"no type":            func(q *readmodel.Query) { q.Types = nil },
		"a type pattern":     func(q *readmodel.Query) { q.TypePatterns = []string{"a.*"} },
		"another user":       func(q *readmodel.Query) { q.UserID = "u2" },
		"no user":            func(q *readmodel.Query) { q.UserID = "" },
		"another from":       func(q *readmodel.Query) { q.From = 0 },
		"another to":         func(q *readmodel.Query) { q.To = 0 },
		"another limit":      func(q *readmodel.Query) { q.Limit = 5 },
		"no cursor":          func(q *readmodel.Query) { q.After = nil },
		"another cursor":     func(q *readmodel.Query) { q.After = &readmodel.Cursor{Timestamp: 3, Seq: 5} },
		"type holds user":    func(q *readmodel.Query) { q.Types = []string{"a\x01u1"}; q.UserID = "" },
		"user holds limit":   func(q *readmodel.Query) { q.UserID = "u1\x011" },
		"types split":        func(q *readmodel.Query) { q.Types = []string{"a\x00b"} },
		"pattern not a type": func(q *readmodel.Query) { q.Types = nil; q.TypePatterns = []string{"a"} },
	}
	seen := map[string]string{queryKey(base): "base"}
	for name, change := range others {
		q := base
		change(&q)
		k := queryKey(q)
		prev, dup := seen[k]
		require.False(t, dup, "%s has the key of %s", name, prev)
		seen[k] = name
	}
}
