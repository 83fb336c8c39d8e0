package publish

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestResolverSettlesInDoubtWrites(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2*time.Second)
	r, o := f.runResolver(t, 2*time.Second)
	ctx := context.Background()

	// landed: the first attempt was stored, only its ack was lost.
	landed := testEvent("landed", true)
	first, err := f.js.PublishMsg(ctx, landed.msg())
	require.NoError(t, err)
	r.add(landed, time.Now())
	// lost: the first attempt never reached the stream.
	r.add(testEvent("lost", true), time.Now())
	// stale: in doubt for longer than the window; republishing could store
	// it twice, so the resolver gives up on it.
	r.add(testEvent("stale", true), time.Now().Add(-time.Minute))

	require.Eventually(t, func() bool {
		return o.get("resolved") == 2 && o.get("unresolved") == 1
	}, 3*time.Minute, 20*time.Millisecond)

	seq, ok := f.ledgerSeq(t, "landed")
	require.True(t, ok)
	require.Equal(t, first.Sequence, seq, "the ledger points at the write that landed")
	seq, ok = f.ledgerSeq(t, "lost")
	require.True(t, ok)
	require.NotZero(t, seq)
	_, ok = f.ledgerSeq(t, "stale")
	require.False(t, ok)
	require.EqualValues(t, 2, f.msgs(t), "landed once, lost stored once, stale not republished")
}
