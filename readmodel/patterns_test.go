package readmodel

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
)

// TestPatternsRegexpMatchesAsMatchType: MongoDB's filter for a subscriber
// token's patterns selects exactly what the live stream's matcher does.
func TestPatternsRegexpMatchesAsMatchType(t *testing.T) {
	t.Parallel()
	types := []string{"order", "order.created", "order.a.b", "orders.created", "page_view", "a-b.c_d", "orderXcreated"}
	for _, patterns := range [][]string{{"order.*"}, {"order.>"}, {">"}, {"*"}, {"order.created", "page_view"}, {"*.created"}, {"a-b.*"}} {
		re := regexp.MustCompile(patternsRegexp(patterns))
		for _, typ := range types {
			want := false
			for _, p := range patterns {
				want = want || schemas.MatchType(p, typ)
			}
			require.Equal(t, want, re.MatchString(typ), "%v %s", patterns, typ)
		}
	}
}
