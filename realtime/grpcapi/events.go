package grpcapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
	"github.com/kilnhq/kiln/realtime/tail"
	"github.com/kilnhq/kiln/schemas"
)

// typePattern is an event type filter: dot-separated tokens, "*" for one
// token, ">" (last) for the rest, as NATS subjects.
var typePattern = regexp.MustCompile(`^(([A-Za-z0-9_-]+|\*)\.)*([A-Za-z0-9_-]+|\*|>)$`)

// ResumeTrailer names the trailer that tells a cut subscriber where to
// resume (the seq of the last event it was sent).
const ResumeTrailer = "kiln-resume-seq"

// eventService is kiln.v1.EventService.
type eventService struct {
	kilnv1.UnimplementedEventServiceServer
	s *Server
}

// Publish stores the events as POST /events stores a batch: one result per
// event, in order; invalid events are reported and the valid ones kept.
func (e *eventService) Publish(ctx context.Context, req *kilnv1.PublishRequest) (*kilnv1.PublishResponse, error) {
	in := req.GetEvents()
	if len(in) == 0 {
		return nil, invalid("no events", "events", "must hold at least one event")
	}
	resp := &kilnv1.PublishResponse{Results: make([]*kilnv1.PublishResult, len(in))}
	batch := make([]newEvent, 0, len(in))
	positions := make([]int, 0, len(in))
	for i, ev := range in {
		meta := json.RawMessage(ev.GetMetadataJson())
		if len(meta) > 0 && !json.Valid(meta) {
			resp.Results[i] = &kilnv1.PublishResult{Id: ev.GetId(), Error: "Invalid event format",
				FieldErrors: []*kilnv1.FieldError{{Field: "metadata_json", Message: "is not valid JSON"}}}
			continue
		}
		batch = append(batch, newEvent{ID: ev.GetId(), EventType: ev.GetEventType(), UserID: ev.GetUserId(),
			Timestamp: ev.GetTimestamp(), Metadata: meta})
		positions = append(positions, i)
	}
	if len(batch) > 0 {
		body, err := json.Marshal(batch)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "encode events: %v", err)
		}
		outs, err := e.s.deps.Ingest.Append(ctx, body)
		if err != nil {
			return nil, invalid(fmt.Sprintf("events refused: %v", err), "events", err.Error())
		}
		for k, out := range outs {
			r := &kilnv1.PublishResult{Id: out.ID, Seq: out.Seq, Duplicate: out.Duplicate}
			if p := out.Problem; p != nil {
				r.Error, r.Retryable = p.Title, p.Status == http.StatusServiceUnavailable
				for _, fe := range p.Errors {
					r.FieldErrors = append(r.FieldErrors, &kilnv1.FieldError{Field: fieldOfEvent(fe.Field), Message: fe.Message})
				}
			}
			resp.Results[positions[k]] = r
		}
	}
	for _, r := range resp.Results {
		switch {
		case r.Retryable:
			resp.Failed++
		case r.Error != "":
			resp.Rejected++
		case r.Duplicate:
			resp.Duplicates++
		default:
			resp.Accepted++
		}
	}
	return resp, nil
}

// fieldOfEvent names an envelope field as the proto message does.
func fieldOfEvent(f string) string {
	switch f {
	case "eventType":
		return "event_type"
	case "userId":
		return "user_id"
	}
	return f
}

// Subscribe streams stored events: with resume, those after since_seq
// first, then live ones, in stream order with no gap and no duplicate. A
// client that keeps GRPC_STREAM_BUFFER events unread for GRPC_SLOW_TIMEOUT
// is cut with ResourceExhausted and a kiln-resume-seq trailer.
func (e *eventService) Subscribe(req *kilnv1.SubscribeRequest, stream kilnv1.EventService_SubscribeServer) error {
	subjects := make([]string, 0, len(req.GetTypes()))
	for _, t := range req.GetTypes() {
		if !typePattern.MatchString(t) {
			return invalid("invalid type filter", "types", fmt.Sprintf("%q is not an event type or pattern", t))
		}
		subjects = append(subjects, schemas.Subject(t))
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
	followed := make(chan error, 1)
	go func() {
		defer close(pending)
		followed <- tail.Follow(ctx, e.s.deps.JetStream, tail.Options{
			Subjects: subjects, After: req.GetSinceSeq(), Resume: req.GetResume(), PullMax: e.s.cfg.SubscribeBuffer,
		}, func(ev schemas.Event) error {
			if req.GetUserId() != "" && ev.UserID != req.GetUserId() {
				return nil
			}
			return e.enqueue(ctx, pending, ev)
		})
	}()
	// The sender may block in Send on a client that reads nothing; the
	// handler does not wait for it once the subscription is over: returning
	// ends the stream, which unblocks Send.
	var sent atomic.Uint64
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
	err := <-followed
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
	return status.Errorf(codes.Unavailable, "subscription ended: %v; resume after the last seq received", err)
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
