package stats

import (
	"math"
	"testing"
	"time"
)

func ms(v ...int) Sorted {
	s := make(Sorted, len(v))
	for i, x := range v {
		s[i] = time.Duration(x) * time.Millisecond
	}
	return s
}

func TestPercentileNearestRank(t *testing.T) {
	t.Parallel()
	hundred := make(Sorted, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond // 1..100 ms
	}
	tests := []struct {
		name string
		s    Sorted
		p    float64
		want time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one sample p50", ms(7), 50, 7 * time.Millisecond},
		{"one sample p99", ms(7), 99, 7 * time.Millisecond},
		{"p0 is min", ms(1, 2, 3), 0, time.Millisecond},
		{"negative is min", ms(1, 2, 3), -5, time.Millisecond},
		{"p100 is max", ms(1, 2, 3), 100, 3 * time.Millisecond},
		{"above 100 is max", ms(1, 2, 3), 150, 3 * time.Millisecond},
		{"p50 of four is 2nd", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p51 of four is 3rd", ms(1, 2, 3, 4), 51, 3 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p99.9 of 1..100", hundred, 99.9, 100 * time.Millisecond},
		{"p29 of 1..100 (float rounding)", hundred, 29, 29 * time.Millisecond},
		{"p1 of 1..100", hundred, 1, time.Millisecond},
		{"NaN", hundred, math.NaN(), 0},
	}
	for _, tt := range tests {
		if got := tt.s.Percentile(tt.p); got != tt.want {
			t.Errorf("%s: Percentile(%v) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

func TestMergeSortsAllWorkers(t *testing.T) {
	t.Parallel()
	a, b := NewSamples(2), NewSamples(-1)
	for _, d := range []int{5, 1, 9} {
		a.Add(time.Duration(d))
	}
	for _, d := range []int{4, 2} {
		b.Add(time.Duration(d))
	}
	got := Merge(a, nil, b)
	want := Sorted{1, 2, 4, 5, 9}
	if len(got) != len(want) {
		t.Fatalf("Merge = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Merge = %v, want %v", got, want)
		}
	}
	if a.Len() != 3 || got.Max() != 9 {
		t.Errorf("Len = %d, Max = %v", a.Len(), got.Max())
	}
	if Merge().Max() != 0 {
		t.Error("empty merge has a max")
	}
}

func TestRates(t *testing.T) {
	t.Parallel()
	if got := PerSecond(500, 250*time.Millisecond); got != 2000 {
		t.Errorf("PerSecond = %v, want 2000", got)
	}
	if got := PerSecond(5, 0); got != 0 {
		t.Errorf("PerSecond over 0 = %v, want 0", got)
	}
	if got := Ratio(1, 4); got != 0.25 {
		t.Errorf("Ratio = %v", got)
	}
	if got := Ratio(1, 0); !math.IsNaN(got) {
		t.Errorf("Ratio over 0 = %v, want NaN", got)
	}
	if got := Millis(1500 * time.Microsecond); got != 1.5 {
		t.Errorf("Millis = %v", got)
	}
}
