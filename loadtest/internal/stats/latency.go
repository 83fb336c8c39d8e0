// Package stats summarises request latencies: workers record samples into
// their own Samples (no locking on the hot path), and the merged, sorted set
// answers nearest-rank percentiles.
package stats

import (
	"math"
	"slices"
	"time"
)

// Samples collects latencies for one worker. It is not safe for concurrent
// use; give every goroutine its own and Merge them at the end.
type Samples struct {
	d []time.Duration
}

// NewSamples returns an empty set with room for about capHint samples.
func NewSamples(capHint int) *Samples {
	return &Samples{d: make([]time.Duration, 0, max(capHint, 0))}
}

// Add records one latency.
func (s *Samples) Add(d time.Duration) { s.d = append(s.d, d) }

// Len is the number of samples recorded.
func (s *Samples) Len() int { return len(s.d) }

// Sorted is a merged set of latencies in ascending order.
type Sorted []time.Duration

// Merge combines the samples of every worker into one sorted set. Nil parts
// are skipped.
func Merge(parts ...*Samples) Sorted {
	n := 0
	for _, p := range parts {
		if p != nil {
			n += len(p.d)
		}
	}
	all := make([]time.Duration, 0, n)
	for _, p := range parts {
		if p != nil {
			all = append(all, p.d...)
		}
	}
	slices.Sort(all)
	return Sorted(all)
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100): the
// smallest sample such that at least p% of the samples are at or below it.
// p ≤ 0 gives the minimum, p ≥ 100 the maximum, and an empty set 0.
func (s Sorted) Percentile(p float64) time.Duration {
	if len(s) == 0 || math.IsNaN(p) {
		return 0
	}
	if p <= 0 {
		return s[0]
	}
	if p >= 100 {
		return s[len(s)-1]
	}
	// The tiny epsilon keeps p/100*n from landing just above an integer
	// because of binary rounding (e.g. 0.29*100 = 29.000000000000004).
	rank := int(math.Ceil(p/100*float64(len(s)) - 1e-9))
	return s[max(rank, 1)-1]
}

// Max returns the largest sample, or 0 for an empty set.
func (s Sorted) Max() time.Duration { return s.Percentile(100) }

// Millis converts a duration to fractional milliseconds.
func Millis(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// PerSecond returns n per second of elapsed, or 0 when elapsed is not
// positive.
func PerSecond(n int64, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(n) / elapsed.Seconds()
}

// Ratio returns a/b, or NaN when b is 0 (encoded as null: there is nothing
// to compare against).
func Ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}
