// Package lease makes one notifier process of many the active one: the
// holder of a key in a NATS KV bucket whose entries expire after the
// lease TTL (the bucket's MaxAge). A process takes the lease with Create,
// which succeeds only while the key is absent (never written, deleted,
// or expired), renews it with Update on its revision, and gives it up
// with a Delete on its revision.
//
// Fencing: the holder counts its lease valid until the moment it sent its
// last successful write plus the TTL less a margin. The server stamped
// that write later, so it expires the key later than the holder stops
// counting on it: a holder that cannot renew stops working before any
// other process can take the lease. A holder whose revision was replaced
// (it was paused past the TTL and another took over) learns it at its
// next renewal and stops at once.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the KV bucket of the notifier's lease, Key its one key.
const (
	Bucket = "KILN_NOTIFIER_LEASE"
	Key    = "active"
)

// ErrLost is returned by Hold when the lease could not be renewed in time
// or was taken by another process.
var ErrLost = errors.New("notifier lease lost")

// Open creates or updates the lease bucket with entries that expire after
// ttl. Every notifier process must use the same ttl.
func Open(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "Kiln notifier: which process is active (the others stand by)",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("lease bucket %s: %w", Bucket, err)
	}
	return kv, nil
}

// Lease is one process's claim on being the active notifier. It is used
// by one goroutine at a time: Acquire, then Hold, then Release.
type Lease struct {
	KV     jetstream.KeyValue
	TTL    time.Duration
	Holder string // names this process in the key's value and in logs
	Log    *slog.Logger

	rev        uint64
	validUntil time.Time
}

// margin is the part of the TTL the holder does not count on: what its
// last message may still take after it stops, and clock-rate differences.
func (l *Lease) margin() time.Duration { return l.TTL / 5 }

// renewEvery is how often the holder renews: three tries before it stops.
func (l *Lease) renewEvery() time.Duration { return l.TTL / 4 }

// pollEvery is how often a standby tries to take the lease.
func (l *Lease) pollEvery() time.Duration { return max(l.TTL/10, 50*time.Millisecond) }

// Acquire waits until this process holds the lease, or ctx is done. It
// tries again every TTL/10, and at once when the key is deleted (the
// holder released it); an expired key leaves no mark to watch.
func (l *Lease) Acquire(ctx context.Context) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var released <-chan jetstream.KeyValueEntry
	if w, err := l.KV.Watch(wctx, Key, jetstream.UpdatesOnly()); err == nil {
		released = w.Updates()
	}
	logged := ""
	for {
		sent := time.Now()
		rev, err := l.KV.Create(ctx, Key, []byte(l.Holder))
		if err == nil {
			l.rev, l.validUntil = rev, sent.Add(l.TTL-l.margin())
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, jetstream.ErrKeyExists) {
			if e, gerr := l.KV.Get(ctx, Key); gerr == nil && string(e.Value()) != logged {
				logged = string(e.Value())
				l.Log.Info("notifier standing by", "active", logged, "holder", l.Holder)
			}
		} else {
			l.Log.Warn("notifier lease: cannot take it", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-released:
			if !ok {
				released = nil // the watch ended: polling alone
			}
		case <-time.After(l.pollEvery()):
		}
	}
}

// Hold renews the lease until ctx is done (nil) or the lease is lost
// (ErrLost): when it returns ErrLost, the holder must have stopped working
// already, which it does by cancelling its work when Hold returns.
func (l *Lease) Hold(ctx context.Context) error {
	next := time.Now().Add(l.renewEvery())
	for {
		wait := min(time.Until(next), time.Until(l.validUntil))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		if !time.Now().Before(l.validUntil) {
			return fmt.Errorf("%w: not renewed within %s", ErrLost, l.TTL-l.margin())
		}
		sent := time.Now()
		rctx, cancel := context.WithDeadline(ctx, l.validUntil)
		rev, err := l.KV.Update(rctx, Key, []byte(l.Holder), l.rev)
		cancel()
		switch {
		case err == nil:
			l.rev, l.validUntil = rev, sent.Add(l.TTL-l.margin())
			next = sent.Add(l.renewEvery())
		case ctx.Err() != nil:
			return nil
		case wrongRevision(err): // another process took it
			return fmt.Errorf("%w: taken by another process", ErrLost)
		default:
			l.Log.Warn("notifier lease: renewal failed, retrying", "err", err, "validFor", time.Until(l.validUntil))
			next = time.Now().Add(l.pollEvery())
		}
	}
}

// Release gives the lease up, so a standby takes over at once instead of
// after the TTL; a lease taken meanwhile by another process is left alone.
func (l *Lease) Release(ctx context.Context) error {
	if l.rev == 0 {
		return nil
	}
	err := l.KV.Delete(ctx, Key, jetstream.LastRevision(l.rev))
	l.rev = 0
	if err != nil && !wrongRevision(err) {
		return fmt.Errorf("release notifier lease: %w", err)
	}
	return nil
}

// wrongRevision reports whether err is JetStream refusing a write for a
// wrong last revision of the key (10071, or 10164 on replicated streams).
func wrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
