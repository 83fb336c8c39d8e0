package live

import "sync"

// mailbox is one client's pending frames while it is subscribed to the
// fan-out: the hub appends, the client's writer takes everything at once.
// It holds at most limit frames (pointers to shared frames); one more
// closes it, which ends the client as a slow consumer once the writer has
// sent what was pending. The queue grows only as far as the client falls
// behind, so an idle client holds no buffer, and a writer that catches up
// swaps two slices instead of allocating.
type mailbox struct {
	limit int
	// wake has room for one signal: "there is something to take".
	wake chan struct{}

	mu     sync.Mutex
	q      []*Frame
	spare  []*Frame
	closed bool
}

func newMailbox(limit int) *mailbox {
	return &mailbox{limit: limit, wake: make(chan struct{}, 1)}
}

// put queues f; false when the mailbox was full, and is now closed.
func (m *mailbox) put(f *Frame) bool {
	m.mu.Lock()
	ok := !m.closed && len(m.q) < m.limit
	if ok {
		m.q = append(m.q, f)
	} else {
		m.closed = true
	}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return ok
}

// take returns every queued frame and whether the mailbox is still open.
// The slice is the writer's until its next take.
func (m *mailbox) take() ([]*Frame, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.q
	clear(m.spare) // the frames the writer sent last time
	m.q, m.spare = m.spare[:0], out
	if cap(m.q) > 4*len(out)+64 { // a burst is over: let its queue go
		m.q = nil
	}
	return out, !m.closed
}
