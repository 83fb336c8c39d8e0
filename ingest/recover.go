package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnhq/kiln/ingest/internal/eventbody"
	"github.com/kilnhq/kiln/ingest/internal/httpapi"
	"github.com/kilnhq/kiln/ingest/internal/metrics"
	"github.com/kilnhq/kiln/ingest/internal/publish"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/schemas/rejections"
)

// RecoverOptions select the kept events to recover.
type RecoverOptions struct {
	// Type is one event type; "" is every type.
	Type string
	// Since keeps the records at or after it; zero is all.
	Since time.Time
	// DryRun validates only: nothing is appended.
	DryRun bool
}

// Recovery outcomes of one record.
const (
	Recovered     = "recovered"      // appended now
	WouldRecover  = "would recover"  // passes now (dry run)
	AlreadyStored = "already stored" // its id is stored already (an earlier recover or a client retry)
	StillFailing  = "still failing"  // the current versions refuse it too
	NotRecovered  = "unavailable"    // JetStream did not confirm the append; run recover again
	// Unrecoverable: the record holds no event to append (a body that was
	// not well-formed JSON, or one cut to fit the stream); skipped.
	Unrecoverable = "not recoverable"
)

// RecoveredEvent is what became of one record.
type RecoveredEvent struct {
	// Record is the rejections record's sequence.
	Record uint64 `json:"record"`
	// Why says why a record is Unrecoverable.
	Why       string               `json:"why,omitempty"`
	ID        string               `json:"id,omitempty"`
	EventType string               `json:"eventType,omitempty"`
	Outcome   string               `json:"outcome"`
	Seq       uint64               `json:"seq,omitempty"`
	Reasons   []schemas.FieldError `json:"reasons,omitempty"`
}

// Recover re-validates the events kept in the REJECTIONS stream against
// the current schema versions (and the types' current enforcement) and
// appends those that pass to EVENTS under their original ids, through
// ingest's publish path and its id ledger: a second recover, or a client
// retry of the same id, finds them stored and stores nothing. A record
// without an id (a refused event that had none) is appended under a new
// one. report receives each record's outcome, in stream order. cfg is
// ingest's configuration (the same stream, ledger and policy settings).
func Recover(ctx context.Context, nc *nats.Conn, cfg Config, opts RecoverOptions, log *slog.Logger, report func(RecoveredEvent)) error {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout))
	if err != nil {
		return fmt.Errorf("recover: jetstream: %w", err)
	}
	if _, err := js.Stream(ctx, rejections.StreamName); err != nil {
		return fmt.Errorf("recover: stream %s: %w", rejections.StreamName, err)
	}
	if _, err := js.Stream(ctx, schemas.StreamName); err != nil {
		return fmt.Errorf("recover: stream %s: %w", schemas.StreamName, err)
	}
	ledger, err := publish.OpenLedger(ctx, js, publish.LedgerOptions{TTL: cfg.IdempotencyTTL, Replicas: cfg.Stream.Replicas})
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	cat, err := (&catalog.Opener{JetStream: js, Stream: cfg.Stream}).Get(ctx)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	live, err := catalog.NewLive(cat, log)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	followCtx, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	go func() { _ = live.Run(followCtx) }()
	select {
	case <-live.Ready():
	case <-ctx.Done():
		return fmt.Errorf("recover: reading the schema catalog: %w", ctx.Err())
	}
	h := &httpapi.Handler{
		Normalizer: &eventbody.Normalizer{Schemas: live.Current, Now: time.Now, MaxFutureSkew: cfg.MaxFutureSkew,
			Enforcement: cfg.Schemas.DefaultEnforcement(), RejectUnknown: cfg.Schemas.RejectUnknownTypes()},
		Publisher:  publish.NewPublisher(js, ledger, nil, cfg.PublishTimeout),
		Metrics:    metrics.NewIngest(prometheus.NewRegistry()),
		MaxBatch:   1,
		RetryAfter: 1,
		Log:        log,
	}
	q := rejections.Query{Type: opts.Type, Since: opts.Since}
	return rejections.Each(ctx, js, q, func(rec rejections.Record) error {
		if !rec.CanRecover() {
			report(RecoveredEvent{Record: rec.Seq, ID: rec.ID, EventType: rec.EventType, Outcome: Unrecoverable, Why: unrecoverableWhy(&rec)})
			return nil
		}
		if rec.ID == "" {
			rec.ID = derivedID(&rec)
		}
		out := RecoveredEvent{Record: rec.Seq, ID: rec.ID, EventType: rec.EventType}
		r := h.AppendAs(ctx, rec.Body, rec.ID, opts.DryRun)
		out.ID, out.Seq = r.ID, r.Seq
		switch {
		case r.Error != nil && r.Error.Status == http.StatusServiceUnavailable:
			out.Outcome = NotRecovered
		case r.Error != nil:
			out.Outcome, out.ID = StillFailing, rec.ID
			for _, e := range r.Error.Errors {
				out.Reasons = append(out.Reasons, schemas.FieldError{Field: e.Field, Message: e.Message})
			}
		case opts.DryRun:
			out.Outcome = WouldRecover
		case r.Duplicate:
			out.Outcome = AlreadyStored
		default:
			out.Outcome = Recovered
		}
		report(out)
		return nil
	})
}

// unrecoverableWhy explains why rec cannot be recovered.
func unrecoverableWhy(rec *rejections.Record) string {
	if rec.Truncated {
		return fmt.Sprintf("only the first %d of the %d bytes sent were kept (the stream's message size)", len(rec.Body), rec.BodyBytes)
	}
	why := "the body sent is not well-formed JSON: no event can be read from it"
	if len(rec.Reasons) > 0 {
		why += " (" + rec.Reasons[0].Message + ")"
	}
	return why
}

// derivedID is the id a record of an event sent without one is recovered
// under: the same for every recover of that record, so the id ledger makes
// a second recover a no-op for it too.
func derivedID(rec *rejections.Record) string {
	h := sha256.New()
	h.Write([]byte(rec.Time.UTC().Format(time.RFC3339Nano)))
	h.Write([]byte{0})
	h.Write(rec.Body)
	return "rejection-" + hex.EncodeToString(h.Sum(nil)[:16])
}
