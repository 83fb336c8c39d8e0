package live

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMailboxHoldsUpToItsLimitThenCloses(t *testing.T) {
	m := newMailbox(3)
	frames := []*Frame{{Seq: 1}, {Seq: 2}, {Seq: 3}, {Seq: 4}}
	got, open := m.take()
	require.Empty(t, got)
	require.True(t, open)
	require.True(t, m.put(frames[0]))
	<-m.wake
	require.True(t, m.put(frames[1]))
	got, open = m.take()
	require.Equal(t, frames[:2], got)
	require.True(t, open)
	for _, f := range frames[:3] {
		require.True(t, m.put(f))
	}
	require.False(t, m.put(frames[3]), "the fourth pending frame overflows")
	require.False(t, m.put(frames[3]), "closed for good")
	<-m.wake
	got, open = m.take()
	require.Equal(t, frames[:3], got, "what was pending is still sent")
	require.False(t, open)
}
