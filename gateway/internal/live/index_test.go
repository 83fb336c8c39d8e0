package live

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIndexVisitsTheSessionsAnEventMayGoTo(t *testing.T) {
	exact := &session{req: Request{Filter: Filter{Types: []string{"order.created"}}}}
	exactToo := &session{req: Request{Filter: Filter{Types: []string{"order.created"}, UserID: "u1"}}}
	other := &session{req: Request{Filter: Filter{Types: []string{"page_view"}}}}
	wild := &session{req: Request{Filter: Filter{Types: []string{"order.*"}}}}
	two := &session{req: Request{Filter: Filter{Types: []string{"a", "b"}}}}
	all := &session{}
	x := newIndex()
	for _, s := range []*session{exact, exactToo, other, wild, two, all, exact} {
		x.add(s)
	}
	require.Equal(t, 6, x.n, "adding twice counts once")
	visited := func(f *Frame) map[*session]bool {
		got := map[*session]bool{}
		x.each(f, func(s *session) { got[s] = true })
		return got
	}
	require.Equal(t, map[*session]bool{exact: true, exactToo: true, wild: true, two: true, all: true},
		visited(&Frame{Type: "order.created"}))
	require.Equal(t, map[*session]bool{wild: true, two: true, all: true}, visited(&Frame{Type: "order.canceled"}))
	require.Len(t, visited(&Frame{alert: true}), 6, "alerts visit everyone")

	x.remove(exact)
	x.remove(exact)
	x.remove(other)
	require.Equal(t, 4, x.n)
	require.NotContains(t, x.byType, "page_view", "empty sets go")
	require.Equal(t, map[*session]bool{exactToo: true, wild: true, two: true, all: true},
		visited(&Frame{Type: "order.created"}))
}
