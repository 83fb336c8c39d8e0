package testsupport

import (
	"context"
	"sync"
	"testing"
)

// Run runs a service's Run(ctx) in a goroutine until stop is called or the
// test ends, whichever comes first: stop cancels the context derived from
// ctx that run got and waits for run to return, which must be nil.
// Cancelling ctx stops run too (a test's simulated crash); stop then only
// waits.
func Run(t testing.TB, ctx context.Context, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("testsupport: run returned %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
