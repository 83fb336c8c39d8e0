package delivery

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	c := Config{BackoffBase: time.Second, BackoffMax: 5 * time.Minute}
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{
		{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {8, 128 * time.Second},
		{9, 256 * time.Second}, {10, 5 * time.Minute}, {60, 5 * time.Minute},
	} {
		require.Equal(t, tc.want, c.retryDelay(tc.attempt), "attempt %d", tc.attempt)
	}
	require.Equal(t, 100*time.Millisecond, Config{BackoffBase: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond}.retryDelay(4))
}

func TestKeyedMutexSerialisesOneKeyOnly(t *testing.T) {
	t.Parallel()
	var k keyedMutex
	var wg sync.WaitGroup
	inside := map[string]int{}
	overlaps := 0
	var mu sync.Mutex
	for i := range 50 {
		key := []string{"a:slack", "b:slack"}[i%2]
		wg.Go(func() {
			defer k.lock(key)()
			mu.Lock()
			if inside[key]++; inside[key] > 1 {
				overlaps++
			}
			mu.Unlock()
			time.Sleep(time.Millisecond) // hold the lock a moment; not synchronisation
			mu.Lock()
			inside[key]--
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Zero(t, overlaps, "a key had two holders at once")
	require.Empty(t, k.locks, "unused keys are forgotten")
}
