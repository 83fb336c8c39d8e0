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
	deleteTimeout = time.Second
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
// ResourceExhausted and a kiln-resume-seq trailer.
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
		return status.Errorf(codes.ResourceExhausted,
			"too many Subscribe streams: this server holds at most %d (GRPC_MAX_SUBSCRIBES); retry later", e.s.cfg.MaxSubscribes)
	}
	defer e.s.subscribes.Add(-1)
	if err := e.resetIfBeforeHistory(req, stream); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	go func() {
		select {
		case <-e.s.stopping:
			cancel(status.Error(codes.Unavailable, "server shutting down; resume with since_seq"))
		case <-ctx.Done():
		}
	}()
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
	stream.SetTrailer(metadata.Pairs(ResumeTrailer, fmt.Sprint(last)))
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

// resetIfBeforeHistory tells a subscriber resuming before the stream's
// first remaining event (the ones after since_seq are gone: limits or a
// purge) where its replay starts, in the ResetHeader response header, as
// SSE's event: reset does; the replay then starts there.
func (e *eventService) resetIfBeforeHistory(req *kilnv1.SubscribeRequest, stream kilnv1.EventService_SubscribeServer) error {
	if !req.GetResume() {
		return nil
	}
	ctx := stream.Context()
	st, err := e.s.deps.JetStream.Stream(ctx, schemas.StreamName)
	if err != nil {
		return e.s.storeError(ctx, codes.Unavailable, "the event store", err)
	}
	first := st.CachedInfo().State.FirstSeq
	if req.GetSinceSeq()+1 >= first {
		return nil
	}
	if err := stream.SendHeader(metadata.Pairs(ResetHeader, fmt.Sprint(first))); err != nil {
		return fmt.Errorf("send %s header: %w", ResetHeader, err)
	}
	return nil
}

// subscription is a validated Subscribe request.
type subscription struct {
	req      *kilnv1.SubscribeRequest
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

func newSubscription(req *kilnv1.SubscribeRequest) (*subscription, error) {
	sub := &subscription{req: req}
	for _, t := range req.GetTypes() {
		if !typePattern.MatchString(t) {
			return nil, invalid("invalid type filter", "types", fmt.Sprintf("%q is not an event type or pattern", t))
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
				last = sub.req.GetSinceSeq()
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
		if err := e.catchUp(ctx, sub, *last, head, send); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-m.C:
			if err := send(ev); err != nil {
				return err
			}
		case <-m.Done():
			// What is buffered is contiguous: send it before rejoining.
			for {
				select {
				case ev := <-m.C:
					if err := send(ev); err != nil {
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
// run at once. It ends at head, or when the stream holds nothing more for
// the filter (everything stored later is after head: the live feed has
// it).
func (e *eventService) catchUp(ctx context.Context, sub *subscription, after, head uint64, fn func(schemas.Event) error) error {
	select {
	case e.s.catchUps <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-e.s.catchUps }()
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: sub.subjects,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1}
	if len(cfg.FilterSubjects) == 0 {
		cfg.FilterSubjects = []string{schemas.SubjectAll}
	}
	js := e.s.deps.JetStream
	cons, err := js.OrderedConsumer(ctx, schemas.StreamName, cfg)
	if err != nil {
		return fmt.Errorf("catch-up after %d: %w", after, err)
	}
	defer func() {
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
			defer cancel()
			_ = js.DeleteConsumer(dctx, schemas.StreamName, info.Name)
		}
	}()
	for {
		batch, err := cons.FetchNoWait(catchUpBatch)
		if err != nil {
			return fmt.Errorf("catch-up after %d: %w", after, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			ev, _, err := schemas.DecodeMsg(msg)
			if err != nil {
				continue
			}
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
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("catch-up after %d: %w", after, err)
		}
		if n == 0 {
			return nil
		}
	}
}

var errSlow = errors.New("slow subscriber")

// enqueue waits up to SlowTimeout for room in the buffer.
func (e *eventService) enqueue(ctx context.Context, pending chan<- *kilnv1.Event, ev schemas.Event) error {
	msg := &kilnv1.Event{Id: ev.ID, EventType: ev.EventType, UserId: ev.UserID, Timestamp: float64(ev.Timestamp),
		MetadataJson: string(ev.Metadata), ReceivedAt: ev.ReceivedAt, Seq: ev.Seq}
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
