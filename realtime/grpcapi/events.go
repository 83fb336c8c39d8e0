package grpcapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
)

// typePattern is an event type filter: dot-separated tokens, "*" for one
// token, ">" (last) for the rest, as NATS subjects.
var typePattern = regexp.MustCompile(`^(([A-Za-z0-9_-]+|\*)\.)*([A-Za-z0-9_-]+|\*|>)$`)

// ResumeTrailer names the trailer that tells a cut subscriber where to
// resume (the seq of the last event it was sent).
const ResumeTrailer = "kiln-resume-seq"

// ResetHeader names the response header of a Subscribe resuming before the
// stream's first remaining event (the ones after since_seq were removed by
// the stream's limits or a purge): the first seq available, where the
// replay starts. SSE sends event: reset for the same. It is also a trailer
// of a Subscribe ended OutOfRange because its next events were removed
// while it was behind.
const ResetHeader = "kiln-reset-first-seq"

// QuarantinedHeader names the response header ("true") of a CreateOrder
// whose order.created event was quarantined: refused by its schema under
// enforcement quarantine and kept in the REJECTIONS stream, not stored.
// (Publish says so in each result's quarantined field.)
const QuarantinedHeader = "kiln-quarantined"

// eventService is kiln.v1.EventService.
type eventService struct {
	kilnv1.UnimplementedEventServiceServer
	s *Server
}

// Publish stores the events as POST /events stores a batch: one result per
// event, in order; invalid events are reported and the valid ones kept.
// An event its type's schema refuses under enforcement quarantine is
// answered with quarantined set (and counted in quarantined, not
// accepted), as POST /events answers "quarantined":true.
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
			r := &kilnv1.PublishResult{Id: out.ID, Seq: out.Seq, Duplicate: out.Duplicate, Quarantined: out.Quarantined}
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
		case r.Quarantined:
			resp.Quarantined++
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
