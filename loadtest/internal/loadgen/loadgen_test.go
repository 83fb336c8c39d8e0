package loadgen

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

func TestClosedCountsEventsAndErrors(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	op := func(_ context.Context, w int) (int, error) {
		time.Sleep(time.Millisecond)
		if calls.Add(1)%4 == 0 {
			return 3, errors.New("partial") // a partial failure counts its events and an error
		}
		return 10, nil
	}
	res := Closed{Workers: 4, Warmup: 20 * time.Millisecond, Duration: 100 * time.Millisecond}.Run(context.Background(), op)
	if res.Ops == 0 || res.Ops >= calls.Load() {
		t.Fatalf("ops = %d of %d calls; warm-up calls must not be measured", res.Ops, calls.Load())
	}
	if res.Errors == 0 || res.Errors >= res.Ops {
		t.Errorf("errors = %d of %d ops", res.Errors, res.Ops)
	}
	if want := 10*(res.Ops-res.Errors) + 3*res.Errors; res.Events != want {
		t.Errorf("events = %d, want %d", res.Events, want)
	}
	if res.Elapsed < 100*time.Millisecond || res.Elapsed > 2*time.Second {
		t.Errorf("elapsed = %v", res.Elapsed)
	}
	if int64(len(res.Latency)) != res.Ops || res.Latency.Percentile(50) < time.Millisecond {
		t.Errorf("%d latencies, p50 %v", len(res.Latency), res.Latency.Percentile(50))
	}
	if res.FirstErr == nil {
		t.Error("no first error")
	}
}

func TestClosedStopsOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	Closed{Workers: 2, Duration: time.Hour}.Run(ctx, func(context.Context, int) (int, error) {
		time.Sleep(time.Millisecond)
		return 1, nil
	})
	if d := time.Since(start); d > time.Second {
		t.Errorf("Run took %v after cancel", d)
	}
}

func TestOpenKeepsRateAndCountsStalls(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	op := func(context.Context, int) (int, error) {
		if calls.Add(1) == 50 {
			time.Sleep(50 * time.Millisecond) // one stall
		}
		return 1, nil
	}
	o := Open{Rate: 1000, Workers: 1, Duration: 200 * time.Millisecond, Grace: time.Second}
	res := o.Run(context.Background(), op)
	if res.Ops != 200 || res.Events != 200 || res.Dropped != 0 {
		t.Fatalf("ops %d events %d dropped %d, want 200 200 0", res.Ops, res.Events, res.Dropped)
	}
	// With one worker the 50ms stall delays the sends scheduled behind it;
	// measured from their scheduled times, dozens of them are late.
	if p90 := res.Latency.Percentile(90); p90 < 5*time.Millisecond {
		t.Errorf("p90 = %v: the stall was hidden (coordinated omission)", p90)
	}
	if res.Latency.Max() < 50*time.Millisecond {
		t.Errorf("max = %v, want ≥ 50ms", res.Latency.Max())
	}
}

func TestOpenDropsWhatItCannotSend(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	o := Open{Rate: 1000, Workers: 1, Duration: 50 * time.Millisecond, Grace: 20 * time.Millisecond}
	done := make(chan Result)
	go func() {
		done <- o.Run(context.Background(), func(context.Context, int) (int, error) {
			<-block
			return 1, nil
		})
	}()
	time.Sleep(150 * time.Millisecond)
	close(block)
	res := <-done
	// One op in the worker, one in the queue; the rest were dropped.
	if res.Dropped < 40 || res.Ops+res.Dropped != 50 {
		t.Errorf("ops %d dropped %d, want 50 in all, most dropped", res.Ops, res.Dropped)
	}
}

func TestCombineSumsRounds(t *testing.T) {
	t.Parallel()
	first := errors.New("first")
	a := Result{Ops: 3, Events: 30, Errors: 1, Elapsed: time.Second, FirstErr: first,
		Latency: []time.Duration{1, 5, 9}}
	b := Result{Ops: 2, Events: 20, Dropped: 4, Elapsed: 2 * time.Second, FirstErr: errors.New("second"),
		Latency: []time.Duration{2, 7}}
	got := Combine(a, b)
	want := Result{Ops: 5, Events: 50, Errors: 1, Dropped: 4, Elapsed: 3 * time.Second, FirstErr: first,
		Latency: []time.Duration{1, 2, 5, 7, 9}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Combine = %+v, want %+v", got, want)
	}
	if got := Combine(a); !reflect.DeepEqual(got, a) {
		t.Errorf("Combine of one round = %+v, want it unchanged %+v", got, a)
	}
}
