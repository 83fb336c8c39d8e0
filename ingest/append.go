package ingest

import (
	"context"
	"fmt"

	"github.com/kilnhq/kiln/schemas/problem"
)

// Outcome is what became of one event given to Append.
type Outcome struct {
	ID        string
	Seq       uint64
	Duplicate bool
	// Quarantined: refused by its type's schema under enforcement
	// quarantine and kept in the REJECTIONS stream, not stored (Seq 0).
	Quarantined bool
	// Problem, when set, says why the event was not stored: Status 400
	// with field errors for an invalid event, 503 when JetStream did not
	// confirm the write in time (retry with the same id).
	Problem *problem.Details
}

// Append stores the events of body, a JSON array of event objects, through
// the same path as POST /events: same validation, id assignment,
// idempotency (the event id is the key) and durability (it returns after
// JetStream acknowledged). Other transports (the gRPC API) call it. The
// error is for a body refused as a whole; per-event failures are in the
// outcomes, one per event, in order.
func (s *Service) Append(ctx context.Context, body []byte) ([]Outcome, error) {
	results, err := s.handler.AppendBatch(context.WithoutCancel(ctx), body)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	out := make([]Outcome, len(results))
	for i, r := range results {
		out[i] = Outcome{ID: r.ID, Seq: r.Seq, Duplicate: r.Duplicate, Quarantined: r.Quarantined, Problem: r.Error}
	}
	return out, nil
}

// MaxBatch is the most events one Append (or POST /events) takes.
func (s *Service) MaxBatch() int { return s.cfg.MaxBatch }
