package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/httpserver/tokens"
	"github.com/kilnhq/kiln/realtime/feed"
	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
	"github.com/kilnhq/kiln/schemas"
)

// Catch-up tuning.
const (
	// catchUpBatch is how many stored events one catch-up fetch asks for.
	catchUpBatch = 256
	// deleteTimeout bounds deleting a finished catch-up consumer.
	deleteTimeout = 5 * time.Second
	// catchUpInactive is when the server removes a catch-up consumer
	// nobody fetches from: one whose delete failed (a loaded server) is
	// gone after it, not after nats.go's default of 5 minutes (hundreds of
	// cancelled Subscribe streams left hundreds of consumers behind).
	catchUpInactive = 10 * time.Second
)

// Subscribe streams stored events: with resume, those after since_seq
// first, then live ones, in stream order with no gap and no duplicate.
//
// Live events come from one subscription shared by every subscriber of
// the process (Server.events, a feed of the whole stream): joining it
// reports the last sequence H it fanned out, and every matching event
// after H reaches the subscriber's buffer. A resuming subscriber behind H
// first replays what it missed up to H with a consumer of its own (at most
// GRPC_MAX_CATCHUPS at once), then continues from its buffer, skipping
// what the replay already sent (and does so again after falling a full
// buffer behind the feed in a burst). A client that keeps
// GRPC_STREAM_BUFFER events unread for GRPC_SLOW_TIMEOUT is cut with
// ResourceExhausted and a kiln-resume-seq trailer. One that fell behind and
// finds, when it rejoins, that the events it needed next were removed by
// the stream's limits ends with OutOfRange and the kiln-reset-first-seq
// trailer too (as SSE sends event: reset).
func (e *eventService) Subscribe(req *kilnv1.SubscribeRequest, stream kilnv1.EventService_SubscribeServer) error {
	sub, err := newSubscription(req)
	if err != nil {
		return err
	}
	if err := sub.limit(rightsOf(stream.Context())); err != nil {
		return err
	}
	if n := e.s.subscribes.Add(1); n > int64(e.s.cfg.MaxSubscribes) {
		e.s.subscribes.Add(-1)
		return e.s.tooManySubscribes()
	}
	defer e.s.subscribes.Add(-1)
	since, st, header, err := e.resumeFrom(req, stream)
	if err != nil {
		return err
	}
	sub.since, sub.checked = since, st
	// The response headers say the stream was accepted (a refused one
	// ends with its status alone), whether or not an event follows soon.
	if err := stream.SendHeader(header); err != nil {
		return fmt.Errorf("send Subscribe headers: %w", err)
	}
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	// No goroutine per stream to watch for the shutdown (5,000 held
	// streams, 5,000 goroutines).
	defer context.AfterFunc(e.s.stopping, func() {
		cancel(status.Error(codes.Unavailable, "server shutting down; resume with since_seq"))
	})()
	pending := make(chan *kilnv1.Event, e.s.cfg.SubscribeBuffer)
	// sent is the position a client resumes from: where the stream began,
	// then the seq of each event sent.
	var sent atomic.Uint64
	followed := make(chan error, 1)
	go func() {
		defer close(pending)
		followed <- e.follow(ctx, sub, pending, &sent)
	}()
	// The sender may block in Send on a client that reads nothing; the
	// handler does not wait for it once the subscription is over: returning
	// ends the stream, which unblocks Send.
	go func() {
		for ev := range pending {
			if err := stream.Send(ev); err != nil {
				cancel(err)
				for range pending {
				}
				return
			}
			sent.Store(ev.Seq)
		}
	}()
	err = <-followed
	last := sent.Load()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	trailer := metadata.Pairs(ResumeTrailer, fmt.Sprint(last))
	if gap := (*gapError)(nil); errors.As(err, &gap) {
		trailer.Set(ResetHeader, fmt.Sprint(gap.first))
		stream.SetTrailer(trailer)
		return status.Error(codes.OutOfRange, gap.Error())
	}
	stream.SetTrailer(trailer)
	if errors.Is(err, errSlow) {
		return status.Errorf(codes.ResourceExhausted,
			"slow subscriber: %d events unread for %s; resume after the last seq received (sent up to %d)",
			cap(pending), e.s.cfg.SlowTimeout, last)
	}
	if s, ok := status.FromError(err); ok && err != nil {
		return s.Err()
	}
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	e.s.deps.Log.WarnContext(ctx, "grpc subscription ended", "component", "grpc", "err", err)
	return status.Error(codes.Unavailable, "subscription ended: the event store is unavailable; resume after the last seq received")
}

// admit runs on the connection's reader before a stream gets a goroutine:
// a Subscribe past GRPC_MAX_SUBSCRIBES is refused there, without the
// handler's goroutine, interceptors and allocations (15,000 at once in
// realtime_flood). The refusal is counted in kiln_grpc_calls_total as the
// handler's is.
func (s *Server) admit(method string, g *guard) error {
	if method != kilnv1.EventService_Subscribe_FullMethodName || s.subscribes.Load() < int64(s.cfg.MaxSubscribes) {
		return nil
	}
	g.calls.WithLabelValues(method, codes.ResourceExhausted.String()).Inc()
	return s.tooManySubscribes()
}

func (s *Server) tooManySubscribes() error {
	return status.Errorf(codes.ResourceExhausted,
		"too many Subscribe streams: this server holds at most %d (GRPC_MAX_SUBSCRIBES); retry later", s.cfg.MaxSubscribes)
}

// resumeFrom is where a resuming Subscribe starts: after since_seq, except
// that a subscriber resuming before the stream's first remaining event
// (the ones after since_seq were removed by the stream's limits or a
// purge) is told where its replay starts, in the ResetHeader response
// header, as SSE's event: reset does, and one resuming past the stream's
// last event (a position from another stream) goes live after the last
// event, as SSE does, instead of waiting silently until the stream
// reaches since_seq. The headers are sent by Subscribe.
// It returns the stream whose state it read (nil when not resuming): the
// first catch-up uses it rather than asking again.
func (e *eventService) resumeFrom(req *kilnv1.SubscribeRequest, stream kilnv1.EventService_SubscribeServer) (uint64, jetstream.Stream, metadata.MD, error) {
	if !req.GetResume() {
		return 0, nil, metadata.MD{}, nil
	}
	ctx := stream.Context()
	st, err := e.s.deps.JetStream.Stream(ctx, schemas.StreamName)
	if err != nil {
		return 0, nil, nil, e.s.storeError(ctx, codes.Unavailable, "the event store", err)
	}
	state := st.CachedInfo().State
	since := min(req.GetSinceSeq(), state.LastSeq)
	if since+1 >= state.FirstSeq {
		return since, st, metadata.MD{}, nil
	}
	// The replay starts at the first remaining event: as if resumed there.
	return state.FirstSeq - 1, st, metadata.Pairs(ResetHeader, fmt.Sprint(state.FirstSeq)), nil
}

// subscription is a validated Subscribe request.
type subscription struct {
	req *kilnv1.SubscribeRequest
	// since is where a resuming subscriber starts (resumeFrom).
	since uint64
	// checked is the stream as resumeFrom read it, gap-free after since:
	// the first catch-up's check (nil once used, or when not resuming).
	checked  jetstream.Stream
	subjects []string // for a catch-up consumer; empty is every event
	// token, when set, is the subscriber token's claims: only the events
	// they allow are sent, whatever the request's filter asks.
	token *tokens.Claims
}

// limit applies a subscriber token's claims: a user_id other than the
// token's is PermissionDenied; the types are narrowed to the token's.
func (s *subscription) limit(r httpserver.Rights) error {
	if r.ReadAll || r.Token == nil {
		return nil
	}
	if u := s.req.GetUserId(); u != "" && r.Token.UserID != "" && u != r.Token.UserID {
		return status.Errorf(codes.PermissionDenied, "this token reads only the events of user %q", r.Token.UserID)
	}
	s.token = r.Token
	return nil
}

// Bounds of a Subscribe filter, as GET /stream's: at most maxTypes
// patterns (each is matched against every event), a user id as long as
// the envelope allows.
const (
	maxTypes     = 100
	maxUserIDLen = 256
)

func newSubscription(req *kilnv1.SubscribeRequest) (*subscription, error) {
	sub := &subscription{req: req}
	if n := len(req.GetTypes()); n > maxTypes {
		return nil, invalid("invalid type filter", "types", fmt.Sprintf("at most %d patterns, got %d", maxTypes, n))
	}
	if n := len(req.GetUserId()); n > maxUserIDLen {
		return nil, invalid("invalid user filter", "user_id", fmt.Sprintf("at most %d bytes, got %d", maxUserIDLen, n))
	}
	for i, t := range req.GetTypes() {
		// The pattern is named by its position: it is not echoed (it may
		// be megabytes).
		if err := schemas.CheckPattern(t); err != nil || !typePattern.MatchString(t) {
			return nil, invalid("invalid type filter", fmt.Sprintf("types[%d]", i),
				"is not an event type pattern: 1-128 characters, dot-separated tokens of letters, digits, '_' or '-', or '*' (one token) and a last '>' (the rest)")
		}
		sub.subjects = append(sub.subjects, schemas.Subject(t))
	}
	return sub, nil
}

// match reports whether ev passes the type and user filters.
func (s *subscription) match(ev schemas.Event) bool {
	if s.token != nil && !s.token.Allows(ev.EventType, ev.UserID) {
		return false
	}
	if u := s.req.GetUserId(); u != "" && ev.UserID != u {
		return false
	}
	if len(s.req.GetTypes()) == 0 {
		return true
	}
	for _, p := range s.req.GetTypes() {
		if schemas.MatchType(p, ev.EventType) {
			return true
		}
	}
	return false
}

// follow fills pending: the catch-up, then the live events, until ctx is
// done or the subscriber is cut. A subscriber that falls a full buffer
// behind the shared feed while it sends (a burst) is not cut for it: it
// joins again and catches up from the last event it queued. Only
// enqueue's SlowTimeout makes a subscriber slow.
func (e *eventService) follow(ctx context.Context, sub *subscription, pending chan<- *kilnv1.Event, sent *atomic.Uint64) error {
	live, err := e.s.liveEvents(ctx)
	if err != nil {
		return err
	}
	var last uint64
	for first := true; ; first = false {
		m, head := live.JoinMatching(e.s.cfg.SubscribeBuffer, sub.match)
		if first {
			last = head
			if sub.req.GetResume() {
				last = sub.since
			}
			sent.Store(last)
		}
		err := e.followFrom(ctx, sub, m, head, &last, pending)
		m.Leave()
		if !errors.Is(err, feed.ErrSlow) {
			return err
		}
	}
}

// gapError ends a Subscribe whose next events were removed from the stream
// before it read them.
type gapError struct{ after, first uint64 }

func (g *gapError) Error() string {
	return fmt.Sprintf("the events after seq %d were removed by the stream's limits before this subscriber read them; "+
		"the stream now starts at seq %d: resume (since_seq from the %s trailer) to replay from there", g.after, g.first, ResumeTrailer)
}

// checkGap reports a gapError when the stream's first remaining event is
// past after+1; it returns the stream otherwise.
func (e *eventService) checkGap(ctx context.Context, after uint64) (jetstream.Stream, error) {
	st, err := e.s.deps.JetStream.Stream(ctx, schemas.StreamName)
	if err != nil {
		return nil, e.s.storeError(ctx, codes.Unavailable, "the event store", err)
	}
	if first := st.CachedInfo().State.FirstSeq; first > after+1 {
		return nil, &gapError{after: after, first: first}
	}
	return st, nil
}

// followFrom sends what is stored after *last up to head (the member's
// join position), then the member's events, advancing *last.
func (e *eventService) followFrom(ctx context.Context, sub *subscription, m *feed.Member, head uint64, last *uint64, pending chan<- *kilnv1.Event) error {
	send := func(ev schemas.Event) error {
		if ev.Seq <= *last {
			return nil // the catch-up sent it, or before since_seq
		}
		if err := e.enqueue(ctx, pending, ev); err != nil {
			return err
		}
		*last = ev.Seq
		return nil
	}
	if *last < head {
		// The events after *last may have been removed since (the stream's
		// limits) while this subscriber was behind: the catch-up would
		// skip to the first remaining one in silence.
		st := sub.checked
		sub.checked = nil
		if st == nil || *last != sub.since {
			var err error
			if st, err = e.checkGap(ctx, *last); err != nil {
				return err
			}
		}
		if err := e.catchUp(ctx, st, sub, *last, head, send); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-m.C:
			if err := send(*ev); err != nil {
				return err
			}
		case <-m.Done():
			// What is buffered is contiguous: send it before rejoining.
			for {
				select {
				case ev := <-m.C:
					if err := send(*ev); err != nil {
						return err
					}
				default:
					return m.Err()
				}
			}
		}
	}
}

// catchUp calls fn for every stored event matching sub after after, up to
// head, in order, with a consumer of its own; at most GRPC_MAX_CATCHUPS
// run at once. It ends at head, or when the consumer has nothing pending
// for the filter (everything stored later is after head: the live feed
// has it).
func (e *eventService) catchUp(ctx context.Context, st jetstream.Stream, sub *subscription, after, head uint64, fn func(schemas.Event) error) error {
	select {
	case e.s.catchUps <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-e.s.catchUps }()
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: sub.subjects,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1,
		InactiveThreshold: catchUpInactive}
	if len(cfg.FilterSubjects) == 0 {
		cfg.FilterSubjects = []string{schemas.SubjectAll}
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("catch-up after %d: %w", after, err)
	}
	defer func() {
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
			defer cancel()
			_ = st.DeleteConsumer(dctx, info.Name)
		}
	}()
	// One pull subscription for the whole catch-up: each Fetch of an
	// ordered consumer re-creates it on the server.
	it, err := cons.Messages(jetstream.PullMaxMessages(catchUpBatch))
	if err != nil {
		return fmt.Errorf("catch-up after %d: %w", after, err)
	}
	defer it.Stop()
	defer context.AfterFunc(ctx, it.Stop)()
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		return nil // nothing stored for the filter after `after`
	}
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("catch-up after %d: %w", after, err)
		}
		if ev, _, err := schemas.DecodeMsg(msg); err == nil {
			if ev.Seq > head {
				return nil
			}
			if sub.match(ev) {
				if err := fn(ev); err != nil {
					return err
				}
			}
			if ev.Seq == head {
				return nil
			}
		}
		// The consumer's last message for the filter: what is stored later
		// comes with the live feed.
		if md, err := msg.Metadata(); err == nil && md.NumPending == 0 {
			return nil
		}
	}
}

var errSlow = errors.New("slow subscriber")

// enqueue waits up to SlowTimeout for room in the buffer.
func (e *eventService) enqueue(ctx context.Context, pending chan<- *kilnv1.Event, ev schemas.Event) error {
	msg := &kilnv1.Event{Id: ev.ID, EventType: ev.EventType, UserId: ev.UserID, Timestamp: float64(ev.Timestamp),
		MetadataJson: string(ev.Metadata), ReceivedAt: ev.ReceivedAt, Seq: ev.Seq}
	if ev.SchemaVersion != 0 {
		v := int32(ev.SchemaVersion)
		msg.SchemaVersion = &v
	}
	select {
	case pending <- msg:
		return nil
	default:
	}
	t := time.NewTimer(e.s.cfg.SlowTimeout)
	defer t.Stop()
	select {
	case pending <- msg:
		return nil
	case <-t.C:
		return errSlow
	case <-ctx.Done():
		return ctx.Err()
	}
}
