package consume

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// fetchWait is how long one pull request stays open on the server waiting
// for messages: an idle loop asks again this often.
const fetchWait = 5 * time.Second

// fetchRetry is the pause after a failed pull request (disconnected, the
// consumer's leader moving) before the next.
const fetchRetry = 500 * time.Millisecond

// feed pulls messages into q until ctx ends, never holding more than q's
// prefetch budget: a pull request asks only for the room left, so this
// process holds the batch it is applying plus at most one batch ahead,
// and the rest of a backlog stays on the server for the other processes
// sharing the durable consumer (issue 25 item 2; the loop used to buffer
// the whole MaxAckPending window, so one process could take a backlog
// while another idled). Every message it pulls goes into q's channel,
// which has room for the whole budget, so it never blocks there and
// every message this process holds is reachable to be kept in progress
// or nak'd.
func (s Spec) feed(ctx context.Context, cons jetstream.Consumer, q *queue) {
	for {
		room := q.room()
		if room == 0 {
			select {
			case <-ctx.Done():
				return
			case <-q.taken:
			}
			continue
		}
		if err := s.pull(ctx, cons, q, room); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.Log.Debug("pull", "consumer", s.Durable, "err", err)
			t := time.NewTimer(fetchRetry)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// pull sends one pull request for up to n messages and queues what it
// brings.
func (s Spec) pull(ctx context.Context, cons jetstream.Consumer, q *queue, n int) error {
	fctx, cancel := context.WithTimeout(ctx, fetchWait)
	defer cancel()
	b, err := cons.Fetch(n, jetstream.FetchContext(fctx))
	if err != nil {
		return err
	}
	for m := range b.Messages() {
		q.put(m)
	}
	err = b.Error()
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return nil // the request expired: ask again
	}
	return err
}
