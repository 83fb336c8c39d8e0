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
//     event continues after the last stored event (just live).
//  2. A large backlog is replayed first without a live subscription, until
//     the backlog is below half the buffer.
//  3. Then the client subscribes to the fan-out, which reports the last
//     sequence H it fanned out (every later event goes to the buffer), the
//     rest up to H is replayed, and buffered frames the replay already sent
//     are skipped. A buffer that overflows during that short replay is
//     dropped and the step is retried.
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
	// The bounds come before the connected frame: a client resuming from
	// past the end gets every event stored after it saw that frame.
	first, last, err := s.streamBounds()
	if cerr := s.control(connectedFrame); cerr != nil || err != nil {
		return errors.Join(cerr, err)
	}
	cursor := s.req.Since
	if first > 0 && cursor+1 < first {
		if err := s.control(string(resetFrame(first))); err != nil {
			return err
		}
		cursor = first - 1
	}
	if cursor > last { // nothing stored after it yet: live after last
		cursor = last
	}
	threshold := uint64(max(s.hub.opts.Buffer/2, 1))
	if last-cursor > threshold {
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
			cursor, err = s.replay(cursor, func(seq, pending uint64) bool { return seq >= hubSeq || pending == 0 })
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

// streamBounds are the stream's first and last sequences.
func (s *session) streamBounds() (uint64, uint64, error) {
	ctx, cancel := context.WithTimeout(s.ctx, requestTimeout)
	defer cancel()
	st, err := s.hub.opts.JetStream.Stream(ctx, schemas.StreamName)
	if err != nil {
		return 0, 0, s.stopped(fmt.Errorf("stream %s: %w", schemas.StreamName, err))
	}
	state := st.CachedInfo().State
	return state.FirstSeq, state.LastSeq, nil
}

// replay writes the stored events after `after` that match the client's
// filter until done(seq, pending) says so for a processed message, and
// returns the last sequence processed. It uses a short-lived ordered
// consumer of its own.
func (s *session) replay(after uint64, done func(seq, pending uint64) bool) (uint64, error) {
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
