package loadgen

import (
	"context"
	"sync"
	"time"

	"github.com/kilnhq/kiln/loadtest/internal/stats"
)

// Open runs an open loop: operations are scheduled at a fixed Rate whatever
// the answers, and a pool of Workers goroutines runs them. Latency is taken
// from each operation's scheduled time, not from when a worker got to it, so
// a stalled server cannot hide its stall by slowing the sender
// (coordinated omission).
type Open struct {
	Rate     float64 // operations per second
	Workers  int
	Warmup   time.Duration
	Duration time.Duration
	// Grace is how long after the window the scheduler may still be blocked
	// on busy workers before it drops the operations it has not started.
	Grace time.Duration
}

// Run drives op at the fixed rate until the schedule is done or ctx is done.
func (o Open) Run(ctx context.Context, op Op) Result {
	total := int64(o.Rate * (o.Warmup + o.Duration).Seconds())
	jobs := make(chan time.Time, o.Workers)
	begin := time.Now()
	start := begin.Add(o.Warmup)
	end := start.Add(o.Duration)

	tallies := make([]tally, o.Workers)
	var wg sync.WaitGroup
	for w := range o.Workers {
		t := &tallies[w]
		t.samples = stats.NewSamples(int(o.Rate*o.Duration.Seconds())/o.Workers + 16)
		wg.Go(func() {
			for due := range jobs {
				n, err := op(ctx, w)
				t1 := time.Now()
				t.record(n, err, t1.Sub(due), t1, !due.Before(start))
			}
		})
	}

	dropped := o.schedule(ctx, jobs, begin, start, total, end.Add(o.Grace))
	close(jobs)
	wg.Wait()
	r := merge(tallies, start, end)
	r.Dropped = dropped
	return r
}

// schedule sends the scheduled time of operation i, begin + i/Rate, once
// that time has come. After a late wake-up the overdue operations go out
// back to back. It returns how many measured operations it never sent.
func (o Open) schedule(ctx context.Context, jobs chan<- time.Time, begin, start time.Time, total int64, giveUp time.Time) int64 {
	stop := time.NewTimer(time.Until(giveUp))
	defer stop.Stop()
	interval := float64(time.Second) / o.Rate
	for i := int64(0); i < total; i++ {
		due := begin.Add(time.Duration(float64(i) * interval))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		select {
		case jobs <- due:
			continue
		case <-stop.C:
		case <-ctx.Done():
		}
		// Count what is left of the measured schedule as dropped.
		var dropped int64
		for ; i < total; i++ {
			if !begin.Add(time.Duration(float64(i) * interval)).Before(start) {
				dropped++
			}
		}
		return dropped
	}
	return 0
}
