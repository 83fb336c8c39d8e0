package redelivery_test

import (
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas/redelivery"
)

func TestExponentialDoublesUpToItsCap(t *testing.T) {
	p := redelivery.Exponential(time.Second, 5*time.Minute)
	for _, tc := range []struct {
		n    uint64
		want time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second},
		{9, 256 * time.Second}, {10, 5 * time.Minute}, {1000, 5 * time.Minute},
	} {
		require.Equal(t, tc.want, redelivery.Delay(p, tc.n), "failure %d", tc.n)
	}
	require.Equal(t, 100*time.Millisecond, redelivery.Delay(redelivery.Exponential(20*time.Millisecond, 100*time.Millisecond), 4))
}

func TestDelayIgnoresJitterAndLeavesThePolicyAlone(t *testing.T) {
	p := backoff.ExponentialBackOff{InitialInterval: 50 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 4, MaxInterval: time.Second}
	for range 20 {
		require.Equal(t, 800*time.Millisecond, redelivery.Delay(p, 3))
	}
	require.Equal(t, 0.5, p.RandomizationFactor)
	first := p.NextBackOff() // not advanced by Delay: still its first interval, ±50 %
	require.True(t, first >= 25*time.Millisecond && first <= 75*time.Millisecond, "first interval %s", first)
}
