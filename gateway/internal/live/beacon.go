package live

import (
	"context"
	"sync"
	"time"
)

// beacon broadcasts "something new" to any number of waiting clients
// without a goroutine or buffer per client: each fire closes the channel
// the clients wait on and hands out a fresh one. A client that was busy
// misses intermediate fires and sees only the latest value, which is what
// heartbeats and metrics snapshots need.
type beacon struct {
	mu    sync.Mutex
	ch    chan struct{}
	value []byte
}

func newBeacon() *beacon {
	return &beacon{ch: make(chan struct{})}
}

// wait returns the channel the next fire closes.
func (b *beacon) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

// next returns the latest value and the channel of the fire after it.
func (b *beacon) next() ([]byte, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.value, b.ch
}

// fire publishes value and wakes every waiting client.
func (b *beacon) fire(value []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.value = value
	close(b.ch)
	b.ch = make(chan struct{})
}

// every calls fn, then waits interval, until ctx is done: the calls
// start at least interval apart, and a slow call delays the next instead
// of making the calls pile up.
func every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
			t.Reset(interval)
		}
	}
}
