package consume

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// queue holds the messages delivered to this process and not yet taken
// into a batch. held are messages taken out of msgs while a batch waited
// for its store, to keep them in progress; they come first.
type queue struct {
	msgs chan jetstream.Msg
	held []jetstream.Msg
	// full is whether the last batch was full: a backlog is draining.
	full bool
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
	return out
}
