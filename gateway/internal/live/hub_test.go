package live

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitSessions giving up on a stream that does not end leaves nothing
// behind (it used to leave a goroutine blocked until every stream ended),
// and returns at once when the last stream ends.
func TestWaitSessionsLeavesNoGoroutineOnTimeout(t *testing.T) { // not parallel: counts goroutines
	h := New(Options{})
	require.True(t, h.start())
	s := &session{hub: h}
	require.True(t, h.open(s))
	h.shutdown()
	require.False(t, h.open(&session{hub: h}), "no one joins after shutdown")

	h.waitSessions(time.Millisecond) // warms up what the runtime starts lazily (-race)
	before := runtime.NumGoroutine()
	for range 50 {
		h.waitSessions(time.Millisecond) // the stream is still open: gives up
	}
	// +1: Eventually runs the condition in a goroutine of its own.
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= before+1 }, 3*time.Minute, 10*time.Millisecond,
		"goroutines left behind by waitSessions")

	waited := make(chan struct{})
	go func() {
		h.waitSessions(time.Hour)
		close(waited)
	}()
	h.leave(s)
	select {
	case <-waited:
	case <-time.After(30 * time.Second):
		t.Fatal("waitSessions did not return when the last stream ended")
	}
	h.waitSessions(time.Hour) // and at once afterwards
}
