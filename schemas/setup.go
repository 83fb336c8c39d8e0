package schemas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// SetupTimeout bounds how long a role keeps trying to create or update a
// stream (or bucket) at start before it gives up.
const SetupTimeout = 2 * time.Minute

// setupAttempt bounds one attempt. JetStream's own default (5 s) is too
// short for an R3 stream being created while the cluster is loaded or a
// second instance is creating it too (issue 25 item 3).
const setupAttempt = 20 * time.Second

// retryPolicy is how Setup retries; tests shorten it.
type retryPolicy struct {
	total, attempt, first, most time.Duration
}

var setupPolicy = retryPolicy{total: SetupTimeout, attempt: setupAttempt, first: 250 * time.Millisecond, most: 5 * time.Second}

// Setup runs do, which creates or updates what is named what (a stream,
// a bucket), until it succeeds: each attempt has its own deadline, and a
// failure that may pass (a timeout, no JetStream yet, the cluster still
// placing the stream, a concurrent creator) is retried with backoff and
// logged, for up to SetupTimeout in all. A refusal of the configuration
// itself is not retried. The error says how long it tried and the last
// failure.
func Setup[T any](ctx context.Context, log *slog.Logger, what string, do func(context.Context) (T, error)) (T, error) {
	return setup(ctx, log, what, setupPolicy, do)
}

func setup[T any](ctx context.Context, log *slog.Logger, what string, p retryPolicy, do func(context.Context) (T, error)) (T, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	tries := 0
	v, err := backoff.Retry(ctx, func() (T, error) {
		tries++
		actx, cancel := context.WithTimeout(ctx, p.attempt)
		defer cancel()
		v, err := do(actx)
		if err != nil && ctx.Err() == nil && !transient(err) {
			return v, backoff.Permanent(err)
		}
		return v, err
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{
		InitialInterval: p.first, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: p.most,
	}), backoff.WithMaxElapsedTime(p.total), backoff.WithNotify(func(err error, next time.Duration) {
		log.Warn("setting up a stream failed; retrying", "what", what, "attempt", tries,
			"retry_in", next.Round(time.Millisecond), "err", err)
	}))
	if err == nil {
		if tries > 1 {
			log.Info("stream set up after retries", "what", what, "attempts", tries,
				"took", time.Since(start).Round(time.Millisecond))
		}
		return v, nil
	}
	if ctx.Err() != nil {
		return v, fmt.Errorf("set up %s: stopped after %d attempts: %w", what, tries, err)
	}
	if !transient(err) {
		return v, fmt.Errorf("set up %s: %w", what, err)
	}
	return v, fmt.Errorf("set up %s: gave up after %d attempts in %s (is JetStream up, and are enough servers for its replicas reachable?): %w",
		what, tries, time.Since(start).Round(time.Second), err)
}

// JetStream error codes a forming cluster answers with.
const (
	errCodeNoPeers              jetstream.ErrorCode = 10005 // no suitable peers for placement (yet)
	errCodeReplicasNotSupported jetstream.ErrorCode = 10074 // replicas > 1 on a server without a cluster
	errCodeStorageResources     jetstream.ErrorCode = 10047 // the stream's MaxBytes does not fit the server's storage
)

// transient reports whether a failed stream or bucket set-up may succeed
// when tried again: a timeout, no responders or a lost connection, a 5xx
// while the cluster elects a leader, no peers to place the replicas on yet
// (servers still joining), or a concurrent creator's "name already in
// use". A configuration refused (other 4xx, replicas without a cluster, a
// size the server's storage cannot reserve) or invalid options are not.
func transient(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case jetstream.JSErrCodeStreamNameInUse, errCodeNoPeers:
			return true
		case errCodeReplicasNotSupported, errCodeStorageResources:
			return false
		}
		return api.Code >= http.StatusInternalServerError
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected)
}
