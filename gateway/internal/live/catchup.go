package live

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/gateway/internal/metrics"
	"github.com/kilnhq/kiln/schemas"
)

// Catch-up tuning.
const (
	// joinRounds is how often a resuming client may overflow its live
	// buffer while replaying the last gap before it counts as slow.
	joinRounds = 3
	// replayBatch is how many messages a catch-up consumer buffers.
	replayBatch = 256
	// replayIdle is how long a catch-up waits for a message before it
	// asks the server whether any are left.
	replayIdle = 2 * time.Second
	// requestTimeout bounds one JetStream API request.
	requestTimeout = 5 * time.Second
	// deleteTimeout bounds deleting a finished catch-up consumer, which
	// also runs at shutdown.
	deleteTimeout = time.Second
)

// resume sends the stored events after Since, then joins the fan-out with
// no gap and no duplicate at the seam:
//
//  1. A position older than the stream's history gets a reset frame and
//     continues from the first stored event; one past the last stored
//     event continues after the last stored event (just live). The
//     stream's bounds are asked once for every client resuming within
//     boundsTTL (see Hub.streamBounds).
//  2. A large backlog the hub's recent events do not cover is replayed
//     first without a live subscription, until it is below half the
//     buffer.
//  3. Then the client subscribes to the fan-out, which reports the last
//     sequence H it fanned out (every later event goes to the buffer), the
//     rest up to H is sent — from the recent events when they cover it,
//     without a JetStream request, else replayed — and buffered frames
//     already sent are skipped. A buffer that overflows meanwhile is
//     dropped and the step is retried.
//
// Replays use a consumer of their own, at most MaxCatchUps at once.
func (s *session) resume() error {
	ctx, cancel := context.WithCancel(s.hub.life)
	defer cancel()
	if s.req.Done != nil {
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-s.req.Done:
				cancel()
			case <-stop:
			}
		}()
	}
	s.ctx = ctx
	if err := s.awaitReady(); err != nil {
		return err
	}
	// The bounds come before the connected frame: a client resuming from
	// past the end gets every event stored after it saw that frame.
	first, last, err := s.hub.streamBounds(ctx)
	if err != nil {
		err = s.stopped(err)
	}
	// The bounds may be a second old; the hub has fanned out up to its
	// lastSeq, which is stored for sure (read before the connected frame
	// too: an event stored after the client saw it is never skipped).
	last = max(last, s.hub.fannedOut())
	if cerr := s.control(connectedFrame); cerr != nil || err != nil {
		return errors.Join(cerr, err)
	}
	cursor := s.req.Since
	if first > 0 && cursor < first-1 {
		if err := s.control(string(resetFrame(first))); err != nil {
			return err
		}
		cursor = first - 1
	}
	if cursor > last { // nothing stored after it yet: live after last
		cursor = last
	}
	threshold := uint64(max(s.hub.opts.Buffer/2, 1))
	if last-cursor > threshold && !s.hub.recentCovers(cursor) {
		cursor, err = s.replay(cursor, func(_, pending uint64) bool { return pending <= threshold })
		if err != nil {
			return err
		}
	}
	for range joinRounds {
		box, hubSeq, err := s.join(true)
		if err != nil {
			return err
		}
		if cursor < hubSeq {
			cursor, err = s.catchUp(cursor, hubSeq)
			if err != nil {
				return err
			}
		}
		if s.hub.goLive(s) {
			return s.live(box, cursor)
		}
	}
	s.hub.opts.Metrics.Drop(metrics.DropSlowConsumer)
	return errSlow
}

// catchUp sends the events after cursor up to hubSeq, from the recent
// events when they cover cursor, else from the stream.
func (s *session) catchUp(cursor, hubSeq uint64) (uint64, error) {
	frames, ok := s.hub.recentAfter(cursor, hubSeq)
	if !ok {
		return s.replay(cursor, func(seq, pending uint64) bool { return seq >= hubSeq || pending == 0 })
	}
	n, pending := 0, 0
	for _, f := range frames {
		if !s.req.Filter.matches(f) {
			continue
		}
		s.w.Write(f.wire)
		n++
		if pending++; pending == drainBatch {
			pending = 0
			if err := s.flush(); err != nil {
				return cursor, err
			}
		}
	}
	s.hub.opts.Metrics.Frames(metrics.FrameEvent, n)
	return hubSeq, s.flush()
}

// acquireCatchUp waits for a catch-up token (sending heartbeats meanwhile)
// and returns its release.
func (s *session) acquireCatchUp() (func(), error) {
	ping := s.hub.ping.wait()
	for {
		select {
		case s.hub.catchUps <- struct{}{}:
			return func() { <-s.hub.catchUps }, nil
		case <-ping:
			ping = s.hub.ping.wait()
			if err := s.heartbeat(); err != nil {
				return nil, err
			}
		case <-s.ctx.Done():
			return nil, s.stopped(s.ctx.Err())
		}
	}
}

// replay writes the stored events after `after` that match the client's
// filter until done(seq, pending) says so for a processed message, and
// returns the last sequence processed. It uses a short-lived ordered
// consumer of its own, holding a catch-up token meanwhile.
func (s *session) replay(after uint64, done func(seq, pending uint64) bool) (uint64, error) {
	release, err := s.acquireCatchUp()
	if err != nil {
		return after, err
	}
	defer release()
	js := s.hub.opts.JetStream
	ctx, cancel := context.WithTimeout(s.ctx, requestTimeout)
	oc, err := js.OrderedConsumer(ctx, schemas.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects:    s.req.Filter.subjects(),
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       after + 1,
		InactiveThreshold: time.Minute,
		MaxResetAttempts:  3,
	})
	cancel()
	if err != nil {
		return after, s.stopped(fmt.Errorf("create catch-up consumer at seq %d: %w", after+1, err))
	}
	info := oc.CachedInfo()
	defer s.deleteConsumer(oc)
	if info != nil && info.NumPending == 0 {
		return after, nil
	}
	it, err := oc.Messages(jetstream.PullMaxMessages(replayBatch))
	if err != nil {
		return after, fmt.Errorf("catch-up from seq %d: %w", after+1, err)
	}
	defer it.Stop()
	last, n := after, 0
	for {
		msg, err := s.nextStored(oc, it)
		if errors.Is(err, errNoneLeft) {
			return last, s.flush()
		}
		if err != nil {
			return last, s.stopped(fmt.Errorf("catch-up after seq %d: %w", last, err))
		}
		meta, err := msg.Metadata()
		if err != nil {
			return last, fmt.Errorf("catch-up after seq %d: %w", last, err)
		}
		seq := meta.Sequence.Stream
		if f, err := eventFrame(msg, seq); err == nil && s.req.Filter.matches(f) {
			s.w.Write(f.wire)
			n++
		}
		last = seq
		if done(seq, meta.NumPending) {
			s.hub.opts.Metrics.Frames(metrics.FrameEvent, n)
			return last, s.flush()
		}
		if n >= drainBatch || meta.NumPending == 0 {
			s.hub.opts.Metrics.Frames(metrics.FrameEvent, n)
			n = 0
			if err := s.flush(); err != nil {
				return last, err
			}
		}
		if err := s.shuttingDown(); err != nil {
			return last, err
		}
	}
}

// errNoneLeft: the catch-up consumer has nothing left to deliver.
var errNoneLeft = errors.New("no stored events left")

// nextStored returns the next message of a catch-up, or errNoneLeft when
// none came for replayIdle and the server says none are pending (messages
// counted at the start can be deleted before they are delivered).
func (s *session) nextStored(oc jetstream.Consumer, it jetstream.MessagesContext) (jetstream.Msg, error) {
	for {
		ctx, cancel := context.WithTimeout(s.ctx, replayIdle)
		msg, err := it.Next(jetstream.NextContext(ctx))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			return msg, err
		}
		ictx, cancel := context.WithTimeout(s.ctx, requestTimeout)
		info, err := oc.Info(ictx)
		cancel()
		if err != nil {
			return nil, err
		}
		if info.NumPending == 0 {
			return nil, errNoneLeft
		}
		if err := s.shuttingDown(); err != nil {
			return nil, err
		}
	}
}

// deleteConsumer removes a finished catch-up consumer now instead of
// leaving it to the server's inactivity cleanup.
func (s *session) deleteConsumer(oc jetstream.Consumer) {
	info := oc.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
	defer cancel()
	if err := s.hub.opts.JetStream.DeleteConsumer(ctx, schemas.StreamName, info.Name); err != nil &&
		!errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.hub.opts.Log.Debug("live stream: delete catch-up consumer", "consumer", info.Name, "err", err)
	}
}

// shuttingDown is errShutdown once the hub or the HTTP server stops.
func (s *session) shuttingDown() error {
	select {
	case <-s.hub.done:
		return errShutdown
	case <-s.req.Done:
		return errShutdown
	default:
		return nil
	}
}

// stopped prefers errShutdown to err when a request failed because the
// hub shut down.
func (s *session) stopped(err error) error {
	if serr := s.shuttingDown(); serr != nil {
		return serr
	}
	return err
}
