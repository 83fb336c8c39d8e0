package grpcapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/schemas/problem"
)

// newEvent is an event as the gRPC services hand it to ingest.
type newEvent struct {
	ID        string          `json:"id,omitempty"`
	EventType string          `json:"eventType"`
	UserID    string          `json:"userId"`
	Timestamp float64         `json:"timestamp"`
	Metadata  json.RawMessage `json:"metadata,omitempty"`
}

// appendOne stores one event through ingest and maps a refusal to a gRPC
// status: InvalidArgument with the field violations (named by fieldName)
// for an invalid event, Unavailable when JetStream did not confirm.
func (s *Server) appendOne(ctx context.Context, ev newEvent, fieldName func(string) string) (ingest.Outcome, error) {
	body, err := json.Marshal([]newEvent{ev})
	if err != nil {
		return ingest.Outcome{}, status.Errorf(codes.Internal, "encode event: %v", err)
	}
	outs, err := s.deps.Ingest.Append(ctx, body)
	if err != nil {
		return ingest.Outcome{}, status.Errorf(codes.InvalidArgument, "event refused: %v", err)
	}
	if p := outs[0].Problem; p != nil {
		return outs[0], problemStatus(p, fieldName)
	}
	return outs[0], nil
}

// problemStatus maps an ingest problem to a gRPC status with details.
func problemStatus(p *problem.Details, fieldName func(string) string) error {
	if p.Status == http.StatusServiceUnavailable {
		st := status.New(codes.Unavailable, p.Detail)
		if d, err := st.WithDetails(&errdetails.RetryInfo{}); err == nil {
			st = d
		}
		return st.Err()
	}
	br := &errdetails.BadRequest{}
	for _, fe := range p.Errors {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: fieldName(fe.Field), Description: fe.Message,
		})
	}
	st := status.New(codes.InvalidArgument, fmt.Sprintf("%s: %s", p.Title, p.Detail))
	if d, err := st.WithDetails(br); err == nil {
		st = d
	}
	return st.Err()
}

// invalid is InvalidArgument with one field violation per pair of
// (field, description).
func invalid(msg string, violations ...string) error {
	br := &errdetails.BadRequest{}
	for i := 0; i+1 < len(violations); i += 2 {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: violations[i], Description: violations[i+1],
		})
	}
	st := status.New(codes.InvalidArgument, msg)
	if d, err := st.WithDetails(br); err == nil {
		st = d
	}
	return st.Err()
}
