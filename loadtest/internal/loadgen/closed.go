// Package loadgen drives an operation from many goroutines, either
// closed-loop (every worker starts its next operation when the previous one
// answered) or open-loop at a fixed rate, and collects counts and latencies.
package loadgen

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/kilnhq/kiln/loadtest/internal/stats"
)

// Op performs one operation for worker w (0 ≤ w < workers). It returns how
// many events the operation stored, and an error when it failed as a whole
// or in part; a partial failure may return both.
type Op func(ctx context.Context, w int) (events int, err error)

// Result is what one load run measured.
type Result struct {
	Ops     int64         // operations started in the measured window
	Events  int64         // events the measured operations stored
	Errors  int64         // measured operations that returned an error
	Dropped int64         // open loop: scheduled operations never started
	Elapsed time.Duration // length of the measured window
	Latency stats.Sorted  // latency of every measured operation
	// FirstErr is the first error seen (warm-up included), for the log.
	FirstErr error
}

// tally is one worker's share of a Result.
type tally struct {
	ops, events, errors int64
	lastEnd             time.Time
	samples             *stats.Samples
	firstErr            error
}

func (t *tally) record(n int, err error, lat time.Duration, end time.Time, measured bool) {
	if err != nil && t.firstErr == nil {
		t.firstErr = err
	}
	if !measured {
		return
	}
	t.ops++
	t.events += int64(n)
	if err != nil {
		t.errors++
	}
	t.samples.Add(lat)
	t.lastEnd = end
}

// merge sums the tallies; the window runs from start to the later of end
// and the last measured operation's answer.
func merge(tallies []tally, start, end time.Time) Result {
	var r Result
	parts := make([]*stats.Samples, len(tallies))
	for i := range tallies {
		t := &tallies[i]
		r.Ops += t.ops
		r.Events += t.events
		r.Errors += t.errors
		parts[i] = t.samples
		if t.lastEnd.After(end) {
			end = t.lastEnd
		}
		if r.FirstErr == nil {
			r.FirstErr = t.firstErr
		}
	}
	r.Elapsed = end.Sub(start)
	r.Latency = stats.Merge(parts...)
	return r
}

// Combine sums results measured one after another (rounds of the same
// load): counts and measured time add up, latencies merge.
func Combine(rs ...Result) Result {
	var out Result
	var n int
	for _, r := range rs {
		n += len(r.Latency)
	}
	lat := make([]time.Duration, 0, n)
	for _, r := range rs {
		out.Ops += r.Ops
		out.Events += r.Events
		out.Errors += r.Errors
		out.Dropped += r.Dropped
		out.Elapsed += r.Elapsed
		lat = append(lat, r.Latency...)
		if out.FirstErr == nil {
			out.FirstErr = r.FirstErr
		}
	}
	slices.Sort(lat)
	out.Latency = stats.Sorted(lat)
	return out
}

// Closed runs a closed loop: Workers goroutines each run the operation
// back to back. Operations started during Warmup are not measured; those
// started in the following Duration are.
type Closed struct {
	Workers  int
	Warmup   time.Duration
	Duration time.Duration
}

// Run drives op until the window closes or ctx is done.
func (c Closed) Run(ctx context.Context, op Op) Result {
	begin := time.Now()
	start := begin.Add(c.Warmup)
	end := start.Add(c.Duration)
	tallies := make([]tally, c.Workers)
	var wg sync.WaitGroup
	for w := range c.Workers {
		t := &tallies[w]
		t.samples = stats.NewSamples(1024)
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				n, err := op(ctx, w)
				t1 := time.Now()
				t.record(n, err, t1.Sub(t0), t1, !t0.Before(start))
			}
		})
	}
	wg.Wait()
	return merge(tallies, start, end)
}
