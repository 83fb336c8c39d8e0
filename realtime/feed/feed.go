// Package feed is a process-wide subscription to events of the stream,
// fanned out to its members: New follows the realtime events (orders,
// chat) that the gRPC chat and the Socket.IO namespaces push to their
// clients, Of any subjects (grpcapi's Subscribe follows the whole stream).
// One ordered consumer serves every member, each with a bounded buffer and
// optionally a filter; a member that falls a full buffer behind is cut
// (its Done closes, Err says why) instead of growing memory or slowing the
// others.
package feed

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/realtime/tail"
	"github.com/kilnhq/kiln/schemas"
)

// subjects are the events the feed follows.
func subjects() []string { return []string{schemas.Subject("order.>"), schemas.Subject("chat.>")} }

// ErrSlow ends a member that fell a full buffer behind.
var ErrSlow = errors.New("slow consumer: fell a full buffer behind the feed")

// ErrClosed ends members when the feed stops.
var ErrClosed = errors.New("feed stopped")

// Feed fans the followed events out to its members.
type Feed struct {
	js       jetstream.JetStream
	log      *slog.Logger
	subjects []string

	mu      sync.Mutex
	members map[*Member]struct{}
	last    uint64 // last sequence fanned out
	closed  bool
	ready   chan struct{} // closed once the consumer is following
	// positioned is set once last holds the stream's end at start (Run's
	// goroutine only).
	positioned bool
}

// New returns a feed of the realtime events (orders, chat) on js; call Run.
func New(js jetstream.JetStream, log *slog.Logger) *Feed { return Of(js, subjects(), log) }

// Of returns a feed of the events on the given subjects; call Run.
func Of(js jetstream.JetStream, subjects []string, log *slog.Logger) *Feed {
	return &Feed{js: js, log: log, subjects: subjects, members: map[*Member]struct{}{}, ready: make(chan struct{})}
}

// Member is one receiver of the feed.
type Member struct {
	f *Feed
	// C carries the member's events. Every member receives the same
	// *Event, read-only: a buffer of n events costs 8n bytes, not the
	// ~100n of Event values (5,000 idle Subscribe streams held 480 MB).
	C     chan *schemas.Event
	match func(schemas.Event) bool // nil: every event
	done  chan struct{}
	once  sync.Once
	err   error
}

// Done is closed when the member was cut or the feed stopped.
func (m *Member) Done() <-chan struct{} { return m.done }

// Err says why Done closed.
func (m *Member) Err() error { return m.err }

// Leave removes the member.
func (m *Member) Leave() { m.f.remove(m, nil) }

// Join adds a member with a buffer of buffer events.
func (f *Feed) Join(buffer int) *Member {
	m, _ := f.JoinMatching(buffer, nil)
	return m
}

// JoinMatching adds a member that receives only the events match accepts
// (every event when match is nil) and returns the last sequence fanned out
// before it joined: the member receives every matching event after it.
func (f *Feed) JoinMatching(buffer int, match func(schemas.Event) bool) (*Member, uint64) {
	m := &Member{f: f, C: make(chan *schemas.Event, max(1, buffer)), done: make(chan struct{}), match: match}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		m.end(ErrClosed)
		return m, f.last
	}
	f.members[m] = struct{}{}
	return m, f.last
}

// Len is the number of members.
func (f *Feed) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.members)
}

// Ready is closed once the feed follows the stream: events stored after
// it closed reach every member.
func (f *Feed) Ready() <-chan struct{} { return f.ready }

func (f *Feed) remove(m *Member, why error) {
	f.mu.Lock()
	delete(f.members, m)
	f.mu.Unlock()
	m.end(why)
}

// end closes Done once, with why as Err: a member may be ended by the feed
// stopping and then left by its reader, or left twice.
func (m *Member) end(why error) {
	m.once.Do(func() {
		m.err = why
		close(m.done)
	})
}

// Run follows the stream until ctx is done: from the events stored after
// it started, restarting after errors from the last sequence fanned out, so
// members miss nothing while it recovers.
func (f *Feed) Run(ctx context.Context) error {
	defer f.stop()
	var once sync.Once
	started := func() { once.Do(func() { close(f.ready) }) }
	for {
		err := f.follow(ctx, started)
		if ctx.Err() != nil {
			return nil
		}
		f.log.Warn("realtime feed restarting", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (f *Feed) follow(ctx context.Context, started func()) error {
	if !f.positioned {
		stream, err := f.js.Stream(ctx, schemas.StreamName)
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.last = stream.CachedInfo().State.LastSeq
		f.mu.Unlock()
		f.positioned = true
	}
	f.mu.Lock()
	after := f.last
	f.mu.Unlock()
	return tail.Follow(ctx, f.js, tail.Options{Subjects: f.subjects, After: after, Resume: true, PullMax: 1024, Started: started}, f.fanOut)
}

func (f *Feed) fanOut(ev schemas.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = ev.Seq
	shared := &ev
	for m := range f.members {
		if m.match != nil && !m.match(ev) {
			continue
		}
		select {
		case m.C <- shared:
		default:
			delete(f.members, m)
			m.once.Do(func() {
				m.err = ErrSlow
				close(m.done)
			})
		}
	}
	return nil
}

func (f *Feed) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for m := range f.members {
		delete(f.members, m)
		m.end(ErrClosed)
	}
}
