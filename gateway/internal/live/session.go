package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/kilnhq/kiln/gateway/internal/metrics"
)

// Request is one client's stream, as the HTTP layer parsed it.
type Request struct {
	Filter Filter
	// Resume asks for the stored events after Since first (Last-Event-ID
	// or ?since=); without it the stream starts with the next live event.
	Resume bool
	Since  uint64
	// Scoped is a subscriber token's stream: no "metrics" frames (or any
	// other frame of every user's data), only the events Filter selects.
	Scoped bool
	// Conn is the client's connection; its write deadline bounds stuck
	// writes. Nil leaves writes unbounded (tests).
	Conn WriteDeadliner
	// Done is closed when the HTTP server shuts down (fasthttp's
	// RequestCtx.Done); nil when there is none.
	Done <-chan struct{}
}

// WriteDeadliner is the part of net.Conn a stream needs.
type WriteDeadliner interface {
	SetWriteDeadline(t time.Time) error
}

// Why a stream ends.
var (
	errGone     = errors.New("client left")
	errShutdown = errors.New("server shutting down")
	errSlow     = errors.New("slow consumer")
)

// drainBatch is the most frames written per flush.
const drainBatch = 128

// session is one client's stream.
type session struct {
	hub *Hub
	w   connWriter
	req Request
	// ctx bounds a catch-up's JetStream requests: canceled when the hub
	// or the HTTP server shuts down. Set by resume.
	ctx context.Context

	// guarded by hub.mu
	box        *mailbox
	catchingUp bool
	overflowed bool

	dmu        sync.Mutex // guards the connection's write deadline
	kicked     bool       // the shutdown deadline is set; never extend it
	extendedAt time.Time
}

// Serve writes one client's stream to conn until the client leaves, is
// too slow, or the hub or the HTTP server shuts down: the body of a
// GET /stream response, whose header the caller wrote. It buffers writes
// only while it has something to send.
func (h *Hub) Serve(conn io.Writer, req Request) {
	s := &session{hub: h, w: connWriter{conn: conn}, req: req}
	if !h.open(s) {
		return
	}
	defer h.leave(s)
	err := s.run()
	switch {
	case err == nil, errors.Is(err, errGone):
	case errors.Is(err, errSlow): // counted where the buffer overflowed
		s.end(fmt.Sprintf("slow consumer: buffer of %d frames full", h.opts.Buffer))
	case errors.Is(err, errShutdown):
		h.opts.Metrics.Drop(metrics.DropShutdown)
		s.end("server shutting down")
	default:
		h.opts.Log.Warn("live stream: catch-up failed", "since", req.Since, "err", err)
		h.opts.Metrics.Drop(metrics.DropReplayError)
		s.end("catch-up from the stream failed; reconnect to retry")
	}
}

func (s *session) run() error {
	if s.req.Resume {
		return s.resume()
	}
	box, cursor, err := s.join(false)
	if err != nil {
		return err
	}
	if err := s.control(connectedFrame); err != nil {
		return err
	}
	return s.live(box, cursor)
}

// join waits until the hub is ready (sending heartbeats meanwhile), then
// subscribes to the fan-out.
func (s *session) join(catchingUp bool) (*mailbox, uint64, error) {
	if err := s.awaitReady(); err != nil {
		return nil, 0, err
	}
	return s.hub.subscribe(s, catchingUp)
}

// awaitReady waits until the hub is ready, sending heartbeats meanwhile.
func (s *session) awaitReady() error {
	ping := s.hub.ping.wait()
	for {
		select {
		case <-s.hub.ready:
			return nil
		case <-ping:
			ping = s.hub.ping.wait()
			if err := s.heartbeat(); err != nil {
				return err
			}
		case <-s.hub.done:
			return errShutdown
		case <-s.req.Done:
			return errShutdown
		}
	}
}

// live relays the fan-out, dropping frames at or before cursor (already
// sent by the catch-up), plus metrics, heartbeats and, on an unfiltered
// stream, the compat snapshot frames: the latest one at once, then each
// new one.
func (s *session) live(box *mailbox, cursor uint64) error {
	h := s.hub
	ping, snaps := h.ping.wait(), h.snapshots.wait()
	if s.req.Scoped {
		snaps = nil // a nil channel: never ready
	}
	var sums <-chan struct{} // nil: never ready
	if s.req.Filter.everything() && !s.req.Scoped {
		var sum []byte
		sum, sums = h.summaries.next()
		if sum != nil {
			s.put(metrics.FrameSnapshot, sum)
			if err := s.flush(); err != nil {
				return err
			}
		}
	}
	for {
		select {
		case <-sums:
			var sum []byte
			sum, sums = h.summaries.next()
			s.put(metrics.FrameSnapshot, sum)
			if err := s.flush(); err != nil {
				return err
			}
		case <-box.wake:
			frames, open := box.take()
			if err := s.send(frames, &cursor); err != nil {
				return err
			}
			if !open {
				return errSlow
			}
		case <-snaps:
			var snap []byte
			snap, snaps = h.snapshots.next()
			s.put(metrics.FrameMetrics, snap)
			if err := s.flush(); err != nil {
				return err
			}
		case <-ping:
			ping = h.ping.wait()
			if err := s.heartbeat(); err != nil {
				return err
			}
		case <-h.done:
			return errShutdown
		case <-s.req.Done:
			return errShutdown
		}
	}
}

// send writes frames, skipping events at or before cursor, flushing every
// drainBatch frames and at the end.
func (s *session) send(frames []*Frame, cursor *uint64) error {
	n, alerts := 0, 0
	defer func() {
		s.hub.opts.Metrics.Frames(metrics.FrameEvent, n)
		s.hub.opts.Metrics.Frames(metrics.FrameAlert, alerts)
	}()
	pending := 0
	for _, f := range frames {
		switch {
		case f.alert:
			alerts++
		case f.Seq > *cursor:
			*cursor = f.Seq
			n++
		default:
			continue
		}
		s.w.Write(f.wire)
		if pending++; pending == drainBatch {
			pending = 0
			if err := s.flush(); err != nil {
				return err
			}
		}
	}
	if pending == 0 {
		return nil
	}
	return s.flush()
}

// put buffers one frame; errors surface at flush.
func (s *session) put(kind string, wire []byte) {
	s.w.Write(wire)
	s.hub.opts.Metrics.Frames(kind, 1)
}

func (s *session) control(frame string) error {
	s.w.WriteString(frame)
	s.hub.opts.Metrics.Frames(metrics.FrameControl, 1)
	return s.flush()
}

func (s *session) heartbeat() error {
	s.w.WriteString(pingFrame)
	s.hub.opts.Metrics.Frames(metrics.FrameHeartbeat, 1)
	return s.flush()
}

// flush sends the buffered frames. Before, it moves the connection's write
// deadline to WriteTimeout from now (at most every quarter of it), so a
// client that accepts no data for that long is cut off. A failed flush
// means the client left.
func (s *session) flush() error {
	if s.req.Conn != nil {
		s.dmu.Lock()
		if now := time.Now(); !s.kicked && now.Sub(s.extendedAt) > s.hub.opts.WriteTimeout/4 {
			s.extendedAt = now
			_ = s.req.Conn.SetWriteDeadline(now.Add(s.hub.opts.WriteTimeout))
		}
		s.dmu.Unlock()
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("%w: %v", errGone, err)
	}
	return nil
}

// kick bounds the connection's writes by deadline for good (shutdown).
func (s *session) kick(deadline time.Time) {
	if s.req.Conn == nil {
		return
	}
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.kicked = true
	_ = s.req.Conn.SetWriteDeadline(deadline)
}

// end sends the final error frame, best effort.
func (s *session) end(text string) {
	s.w.Write(errorFrame(text))
	s.hub.opts.Metrics.Frames(metrics.FrameControl, 1)
	_ = s.flush()
}
