package scenario

import (
	"slices"
	"testing"
	"time"
)

func TestReadStamps(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1_800_000_000_000)
	const n = 10_000
	tests := []struct {
		order   string
		ordered bool
		oldest  int64
	}{
		{ReadOrdered, true, now.UnixMilli() - n},
		{ReadShuffled, false, now.Add(-time.Minute).UnixMilli()},
	}
	for _, tt := range tests {
		stamps := readStamps(tt.order, n, now)
		if len(stamps) != n {
			t.Fatalf("%s: %d stamps, want %d", tt.order, len(stamps), n)
		}
		if got := slices.IsSorted(stamps); got != tt.ordered {
			t.Errorf("%s: sorted = %v, want %v", tt.order, got, tt.ordered)
		}
		sorted := slices.Sorted(slices.Values(stamps))
		if sorted[0] != tt.oldest || sorted[n-1] >= now.UnixMilli() || sorted[n-1] < now.UnixMilli()-1000 {
			t.Errorf("%s: stamps from %d to %d, want from %d to the second before %d", tt.order, sorted[0], sorted[n-1], tt.oldest, now.UnixMilli())
		}
		if len(slices.Compact(sorted)) != n {
			t.Errorf("%s: stamps repeat", tt.order)
		}
	}
}
