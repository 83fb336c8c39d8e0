// Package redelivery says how long a JetStream consumer waits before a
// message it could not handle is delivered again. A nak carries one delay
// and the consumer keeps no state between deliveries, so the delay is a
// function of how many times the message failed: the n-th interval of an
// exponential backoff (github.com/cenkalti/backoff/v5), without jitter.
// Each consumer keeps its own policy beside its other settings; this package
// holds the one computation they share.
package redelivery

import (
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Exponential is the policy base·2^(n-1), capped at max.
func Exponential(base, max time.Duration) backoff.ExponentialBackOff {
	return backoff.ExponentialBackOff{InitialInterval: base, Multiplier: 2, MaxInterval: max}
}

// Delay returns the wait after failure n (1-based; below 1 counts as 1):
// the n-th interval p gives, with p's RandomizationFactor ignored so the
// same n always gives the same delay. p is a copy: the caller's value is
// not advanced.
func Delay(p backoff.ExponentialBackOff, n uint64) time.Duration {
	p.RandomizationFactor = 0
	p.Reset()
	d := p.NextBackOff()
	for i := uint64(1); i < n && d < p.MaxInterval; i++ {
		d = p.NextBackOff()
	}
	return d
}
