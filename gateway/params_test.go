package gateway_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestListEventsRefusesBadParameters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	tests := []struct {
		name   string
		query  string
		fields []string // every field errors[] must name
	}{
		{"limit zero", "limit=0", []string{"limit"}},
		{"limit over max", "limit=1001", []string{"limit"}},
		{"limit not a number", "limit=abc", []string{"limit"}},
		{"limit fraction", "limit=1.5", []string{"limit"}},
		{"limit given twice", "limit=1&limit=2", []string{"limit"}},
		{"from not a time", "from=yesterday", []string{"from"}},
		{"from date only", "from=2026-01-01", []string{"from"}},
		{"to negative", "to=-5", []string{"to"}},
		{"to zero", "to=0", []string{"to"}},
		{"to past year 9999", "to=253402300800000", []string{"to"}},
		{"from after to", "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", []string{"from"}},
		{"cursor garbage", "cursor=garbage", []string{"cursor"}},
		{"cursor not base64", "cursor=%%%", []string{"cursor"}},
		{"type with a space", "type=bad%20type", []string{"type"}},
		{"type empty token", "type=a..b", []string{"type"}},
		{"type comma list", "type=a,b", []string{"type"}},
		{"type too long", "type=" + strings.Repeat("x", 129), []string{"type"}},
		{"one good one bad type", "type=ok&type=no!", []string{"type"}},
		{"userId too long", "userId=" + strings.Repeat("u", 257), []string{"userId"}},
		{"unknown parameter", "unknown=1", []string{"unknown"}},
		{"wrong case", "userid=u1", []string{"userid"}},
		{"several at once", "limit=0&from=x&bogus=1", []string{"limit", "from", "bogus"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := get(t, h.url+"/events?"+tt.query)
			p := requireProblem(t, r, 400)
			var fields []string
			for _, e := range p.Errors {
				require.NotEmpty(t, e.Message)
				fields = append(fields, e.Field)
			}
			require.ElementsMatch(t, tt.fields, fields, "%s", r.body)
		})
	}

	t.Run("accepted", func(t *testing.T) {
		t.Parallel()
		for _, q := range []string{"", "limit=1", "limit=1000", "type=order.created&type=page_view", "type=a-b_c.D9",
			"userId=u1&from=1&to=253402300799999", "type=&userId=&limit=", "access_token=ignored-when-auth-is-off"} {
			r := get(t, h.url+"/events?"+q)
			require.Equal(t, 200, r.status, "%s: %s", q, r.body)
		}
	})
}
