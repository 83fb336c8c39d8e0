package scenario

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/kilnhq/kiln/loadtest/internal/loadgen"
	"github.com/kilnhq/kiln/loadtest/internal/payload"
	"github.com/kilnhq/kiln/loadtest/internal/report"
	"github.com/kilnhq/kiln/loadtest/internal/stats"
)

// registeredTypes is how many types ingest_types registers.
const registeredTypes = 50

// types: registers 50 event types at runtime (POST /schemas/{type}; half
// with a flat metadata schema, half nested), then runs ingest_batch and
// ingest_single twice each, alternately: with events spread over the 50
// registered types, and with today's payload (page_view, one of the four
// built-in types). One line per ingest scenario; its baseline is the
// built-in run of the same scenario, same run.
func (r *runner) types(ctx context.Context) (any, error) {
	types := payload.Types(registeredTypes)
	if err := r.register(ctx, types); err != nil {
		return nil, err
	}
	batchClient, err := r.client(r.cfg.Clients)
	if err != nil {
		return nil, err
	}
	typed, builtin := payload.TypedBatches(r.cfg.Clients, r.cfg.Batch, types), payload.Batches(r.cfg.Clients, r.cfg.Batch)
	postBatches := func(phase string, bodies [][]byte) func() loadgen.Result {
		return func() loadgen.Result {
			return r.closed(ctx, phase, kilnPhase, func(_ context.Context, w int) (int, error) {
				return batchClient.PostBatch(bodies[w], r.cfg.Batch)
			})
		}
	}
	bt, bb := r.alternate(postBatches("ingest_types batch, 50 registered types", typed),
		postBatches("ingest_types batch, page_view", builtin))
	typedSingles, builtinSingles := payload.TypedSingles(r.cfg.Clients, types), payload.Singles(r.cfg.Clients)
	postSingles := func(phase string, bodies [][]byte) func() loadgen.Result {
		return func() loadgen.Result {
			return r.closed(ctx, phase, kilnPhase, func(_ context.Context, w int) (int, error) {
				return one(batchClient.PostSingle(bodies[w]))
			})
		}
	}
	st, sb := r.alternate(postSingles("ingest_types single, 50 registered types", typedSingles),
		postSingles("ingest_types single, page_view", builtinSingles))
	line := func(bench string, typed, builtin loadgen.Result, batch int) report.Types {
		rate, baseRate := stats.PerSecond(typed.Events, typed.Elapsed), stats.PerSecond(builtin.Events, builtin.Elapsed)
		return report.Types{
			Bench:              bench,
			EventsPerS:         report.Rate(rate),
			BaselineEventsPerS: report.Rate(baseRate),
			Ratio:              report.Ratio(stats.Ratio(rate, baseRate)),
			P99Ms:              report.Millis(stats.Millis(typed.Latency.Percentile(99))),
			BaselineP99Ms:      report.Millis(stats.Millis(builtin.Latency.Percentile(99))),
			Types:              registeredTypes,
			Clients:            r.cfg.Clients,
			Batch:              batch,
			Errors:             typed.Errors + typed.Dropped + builtin.Errors + builtin.Dropped,
			Rounds:             max(1, r.cfg.Rounds),
		}
	}
	return []any{line(IngestTypesBatch, bt, bb, r.cfg.Batch), line(IngestTypesSingle, st, sb, 1)}, nil
}

// register posts each type's schema; a type already registered with the
// same document (a second run against one deployment) answers 200.
func (r *runner) register(ctx context.Context, types []payload.TypeSchema) error {
	base, err := url.Parse(r.cfg.URL)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: r.cfg.Timeout}
	for _, t := range types {
		u := base.JoinPath("schemas", t.Name)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(t.Schema))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if r.cfg.AdminKey != "" {
			req.Header.Set("Authorization", "Bearer "+r.cfg.AdminKey)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("register %s: %w", t.Name, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			return fmt.Errorf("register %s: POST %s: status %d: %s", t.Name, u.Path, resp.StatusCode, strings.TrimSpace(string(body)))
		}
	}
	r.log.Info("registered event types", "types", len(types))
	return nil
}
