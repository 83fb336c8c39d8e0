package consume

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// queue holds the messages delivered to this process and not yet taken
// into a batch. held are messages taken out of msgs while a batch waited
// for its store, to keep them in progress; they come first.
//
// Its capacity is the prefetch budget: queued counts the messages in msgs
// and held together, feed asks the server for no more than the room left,
// and taken wakes feed when a batch makes room.
type queue struct {
	msgs   chan jetstream.Msg
	held   []jetstream.Msg
	queued atomic.Int64
	taken  chan struct{}
	// full is whether the last batch was full: a backlog is draining.
	full bool
}

func newQueue(budget int) *queue {
	return &queue{msgs: make(chan jetstream.Msg, budget), taken: make(chan struct{}, 1)}
}

// room is how many more messages the queue may be given.
func (q *queue) room() int {
	return max(0, cap(q.msgs)-int(q.queued.Load()))
}

// put queues a message; it never blocks while the caller asks for no more
// than room.
func (q *queue) put(m jetstream.Msg) {
	q.queued.Add(1)
	q.msgs <- m
}

// took records that n messages left the queue for a batch.
func (q *queue) took(n int) {
	if n == 0 {
		return
	}
	q.queued.Add(-int64(n))
	select {
	case q.taken <- struct{}{}:
	default:
	}
}

// lingerFull is how long a batch waits to fill while a backlog drains
// (the previous batch was full), so the store gets few large writes
// rather than many small ones. A lone live event never waits.
const lingerFull = 20 * time.Millisecond

// batch returns up to size messages, waiting for the first; ok is false
// when ctx ends first.
func (q *queue) batch(ctx context.Context, size int) (batch []jetstream.Msg, ok bool) {
	batch = make([]jetstream.Msg, 0, size)
	n := min(size, len(q.held))
	batch = append(batch, q.held[:n]...)
	q.held = q.held[n:]
	if len(batch) == 0 {
		select {
		case <-ctx.Done():
			return nil, false
		case m := <-q.msgs:
			batch = append(batch, m)
		}
	}
	var linger <-chan time.Time
	if q.full {
		t := time.NewTimer(lingerFull)
		defer t.Stop()
		linger = t.C
	}
fill:
	for len(batch) < size {
		select {
		case m := <-q.msgs:
			batch = append(batch, m)
			continue
		default:
		}
		if linger == nil {
			break
		}
		select {
		case m := <-q.msgs:
			batch = append(batch, m)
		case <-linger:
			break fill
		case <-ctx.Done():
			break fill
		}
	}
	q.full = len(batch) == size
	q.took(len(batch))
	return batch, true
}

// hold moves what msgs holds into held and returns every held message.
func (q *queue) hold() []jetstream.Msg {
	for {
		select {
		case m := <-q.msgs:
			q.held = append(q.held, m)
		default:
			return q.held
		}
	}
}

// drain empties the queue and returns what it held.
func (q *queue) drain() []jetstream.Msg {
	out := q.hold()
	q.held = nil
	q.took(len(out))
	return out
}
