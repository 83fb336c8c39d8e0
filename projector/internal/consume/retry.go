package consume

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

// unprojectable marks an error as the event's own fault.
type unprojectable struct{ err error }

func (u unprojectable) Error() string { return u.err.Error() }
func (u unprojectable) Unwrap() error { return u.err }

// Unprojectable marks err as caused by the events themselves (they can
// never be applied), not by the store: only such an error makes a message
// poison. Every other Apply error is a store error, retried for as long as
// it takes.
func Unprojectable(err error) error {
	if err == nil {
		return nil
	}
	return unprojectable{err}
}

// IsUnprojectable reports whether err was marked by Unprojectable.
func IsUnprojectable(err error) bool {
	var u unprojectable
	return errors.As(err, &u)
}

// Batch retries: a store may refuse a write for a moment (FerretDB's SQLite
// answers SQLITE_BUSY to concurrent writers), so a failed batch is retried
// whole a few times, 50 ms, 200 ms and 800 ms apart, before its events are
// isolated one by one.
const batchAttempts = 4

func batchBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: 50 * time.Millisecond, Multiplier: 4, MaxInterval: 800 * time.Millisecond}
}

// ApplyWithRetry applies events, retrying a failed write with backoff a few
// times. Every projection is idempotent, so a retry after a partial write is
// safe. An Unprojectable error is not retried; when ctx ends it returns the
// last error, or ctx's error while waiting.
func ApplyWithRetry(ctx context.Context, p Projection, events []schemas.Event) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := p.Apply(ctx, events)
		if IsUnprojectable(err) || ctx.Err() != nil {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(batchBackoff()), backoff.WithMaxTries(batchAttempts))
	return err
}

// applyUntilStored applies events until the store takes them: it returns
// nil, an Unprojectable error, or ctx's error.
func (s Spec) applyUntilStored(ctx context.Context, q *queue, msgs []jetstream.Msg, events []schemas.Event) error {
	var unproj error
	err := s.retryStore(ctx, q, msgs, func(ctx context.Context) error {
		err := s.Projection.Apply(ctx, events)
		if IsUnprojectable(err) {
			unproj = err
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	return unproj
}

// retryStore runs write until it succeeds or ctx ends. While it fails, the
// messages of the batch and every message queued behind it are kept in
// progress (so AckWait never expires and no delivery attempt is spent), the
// outage shows in Health and the metrics, and it is logged when it starts,
// at most every outageLogEvery while it lasts, and when it ends.
func (s Spec) retryStore(ctx context.Context, q *queue, msgs []jetstream.Msg, write func(context.Context) error) error {
	err := write(ctx)
	if err == nil || ctx.Err() != nil {
		if err == nil {
			s.storeUp()
		}
		return ctx.Err()
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = orDefault(s.MinBackoff, 100*time.Millisecond)
	b.MaxInterval = orDefault(s.MaxBackoff, 30*time.Second)
	keepAlive := max(s.AckWait/3, 100*time.Millisecond)
	lastProgress := time.Now()
	for {
		s.storeDown(err)
		wait := time.NewTimer(b.NextBackOff())
	waiting:
		for {
			tick := time.NewTimer(max(0, keepAlive-time.Since(lastProgress)))
			select {
			case <-ctx.Done():
				tick.Stop()
				wait.Stop()
				return ctx.Err()
			case <-wait.C:
				tick.Stop()
				break waiting
			case <-tick.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
				for _, m := range q.hold() {
					_ = m.InProgress()
				}
				lastProgress = time.Now()
			}
		}
		if err = write(ctx); err == nil {
			s.storeUp()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
