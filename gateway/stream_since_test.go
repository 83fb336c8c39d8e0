package gateway_test

import (
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// Issue 13 item 7: a since or Last-Event-ID at the top of the uint64 range
// must not wrap around (since+1 == 0) and replay the whole stream; like any
// position past the last sequence it is just live.
func TestStreamSinceAtTheTopDoesNotWrap(t *testing.T) {
	t.Parallel()
	g := newLiveGateway(t, liveOptions{})
	publish(t, g.js, same(5, "a", "u1")...)
	top := strconv.FormatUint(math.MaxUint64, 10)
	clients := []*sseClient{
		openStream(t, g.url+"/stream?since="+top),
		openStream(t, g.url+"/stream", "Last-Event-ID", top),
		openStream(t, g.url+"/stream?since="+strconv.FormatUint(math.MaxUint64-1, 10)),
	}
	for _, c := range clients {
		c.requireConnected(t)
	}
	publish(t, g.js, same(2, "a", "u1")...)
	for i, c := range clients {
		require.Equal(t, []uint64{6, 7}, c.eventsUntil(t, 7), "client %d: just live, no replay", i)
		c.close()
	}
}
