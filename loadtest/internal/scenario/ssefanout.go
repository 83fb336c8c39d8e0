package scenario

import (
	"context"

	"github.com/kilnhq/kiln/loadtest/internal/ssefanout"
	"github.com/kilnhq/kiln/schemas"
)

// sseFanout: -sse-narrow clients following one event type each (about one
// event/s) plus -sse-wide clients taking the whole stream, while events are
// posted at -sse-rate; with -gateway-pid the gateway's memory per idle
// client too. See package ssefanout.
func (r *runner) sseFanout(ctx context.Context) (any, error) {
	r.settle(ctx)
	res, err := ssefanout.Run(ctx, ssefanout.Options{
		URL: r.cfg.URL, StreamURL: r.cfg.SSEURL, APIKey: r.cfg.APIKey,
		Narrow: r.cfg.SSENarrow, Wide: r.cfg.SSEWide, Rate: r.cfg.SSERate,
		Warmup: r.cfg.Warmup, Duration: r.cfg.Duration, Timeout: r.cfg.Timeout,
		GatewayPID: r.cfg.GatewayPID, Log: r.log,
	})
	if err != nil {
		return nil, err
	}
	r.log.Info("phase done", "phase", "sse_fanout", "frames_per_s", res.FramesPerS, "p99_ms", res.P99Ms,
		"dropped", res.Dropped, "missed", res.Missed, "post_errors", res.PostErrors)
	if r.cfg.PurgeIngested {
		if err := r.pub.PurgeSubject(ctx, schemas.Subject(ssefanout.EventTypes)); err != nil {
			r.log.Warn("purge failed", "err", err)
		}
	}
	return res, nil
}
