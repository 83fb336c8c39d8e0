package schemas

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMatchTypeHasNATSWildcardSemantics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		match   []string
		miss    []string
	}{
		{"order.created", []string{"order.created"}, []string{"order", "order.created.x", "order.canceled", "x.order.created"}},
		{"order.*", []string{"order.created", "order.x"}, []string{"order", "order.a.b", "orders.created", "x.order.created"}},
		{"order.>", []string{"order.created", "order.a.b", "order.a.b.c"}, []string{"order", "orders.a", "x.order.a"}},
		{"*", []string{"order", "page_view"}, []string{"order.created"}},
		{">", []string{"order", "order.created", "a.b.c"}, nil},
		{"*.created", []string{"order.created", "user.created"}, []string{"created", "order.item.created", "order.canceled"}},
		{"*.*.>", []string{"a.b.c", "a.b.c.d"}, []string{"a.b", "a"}},
		{"a.*.c", []string{"a.b.c"}, []string{"a.c", "a.b.c.d", "a.b.d"}},
	}
	for _, tt := range tests {
		for _, typ := range tt.match {
			require.True(t, MatchType(tt.pattern, typ), "%s should match %s", tt.pattern, typ)
		}
		for _, typ := range tt.miss {
			require.False(t, MatchType(tt.pattern, typ), "%s should not match %s", tt.pattern, typ)
		}
	}
}

func TestCheckPattern(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"order.created", "order.*", "order.>", ">", "*", "*.created", "page_view", "a-b.c_d"} {
		require.NoError(t, CheckPattern(p), p)
	}
	for _, p := range []string{"", "order..x", "order.>.x", "order.", ".order", "order created", "order.a*", strings.Repeat("a", 129)} {
		require.Error(t, CheckPattern(p), p)
	}
}
