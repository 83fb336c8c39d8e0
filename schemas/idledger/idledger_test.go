package idledger

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestValuesRoundTrip(t *testing.T) {
	at := time.UnixMilli(1765000000123)
	for _, tt := range []struct {
		raw  []byte
		want Value
	}{
		{SeqValue(42), Value{Seq: 42}},
		{PendingValue(at), Value{Pending: at}},
		{[]byte("7"), Value{Seq: 7}},
		{[]byte("p1765000000123"), Value{Pending: at}},
	} {
		got, err := Parse(tt.raw)
		require.NoError(t, err, "%q", tt.raw)
		require.Equal(t, tt.want, got, "%q", tt.raw)
	}
	for _, bad := range []string{"", "p", "px", "x", "-1"} {
		_, err := Parse([]byte(bad))
		require.Error(t, err, "%q", bad)
	}
	require.Len(t, Key("any id"), 64)
}
