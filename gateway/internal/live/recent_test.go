package live

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func seqs(fs []*Frame) []uint64 {
	out := []uint64{}
	for _, f := range fs {
		out = append(out, f.Seq)
	}
	return out
}

func TestRecentCoversOnlyWhatItHolds(t *testing.T) {
	t.Parallel()
	r := newRecent(3)
	r.reset(10) // covers what follows 10
	got, ok := r.after(10, 10, nil)
	require.True(t, ok)
	require.Empty(t, got)
	_, ok = r.after(9, 10, nil)
	require.False(t, ok, "seq 10 itself is not held")

	for _, seq := range []uint64{11, 12, 14} { // 13 was not an event
		r.add(&Frame{Seq: seq})
	}
	got, ok = r.after(10, 14, nil)
	require.True(t, ok)
	require.Equal(t, []uint64{11, 12, 14}, seqs(got))
	got, _ = r.after(12, 14, nil)
	require.Equal(t, []uint64{14}, seqs(got))
	got, _ = r.after(11, 12, nil)
	require.Equal(t, []uint64{12}, seqs(got), "nothing after upto")

	r.add(&Frame{Seq: 15}) // 11 falls out
	_, ok = r.after(10, 15, nil)
	require.False(t, ok)
	got, ok = r.after(11, 15, nil)
	require.True(t, ok)
	require.Equal(t, []uint64{12, 14, 15}, seqs(got))
	got, ok = r.after(20, 15, nil)
	require.True(t, ok)
	require.Empty(t, got)
}
