package live

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFilterCombinesTypesAndUser(t *testing.T) {
	t.Parallel()
	require.True(t, Filter{}.Match("anything", "anyone"))
	f := Filter{Types: []string{"order.*", "page_view"}, UserID: "u1"}
	require.True(t, f.Match("order.created", "u1"))
	require.True(t, f.Match("page_view", "u1"))
	require.False(t, f.Match("order.created", "u2"), "userId and type must both match")
	require.False(t, f.Match("payment.failed", "u1"))
	require.Equal(t, []string{"events.order.*"}, Filter{Types: []string{"order.*"}}.subjects(), "one pattern filters on the server")
	require.Equal(t, []string{"events.>"}, f.subjects(), "several (possibly overlapping) patterns filter here")
}
