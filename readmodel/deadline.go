package readmodel

import (
	"context"
	"time"
)

// CallTimeout bounds every MongoDB call of the read models whose caller set
// no earlier deadline. A store that hangs (FerretDB with an exhausted
// connection pool, a partitioned MongoDB) then fails the call, and the
// projector backs off and retries instead of waiting forever.
const CallTimeout = 30 * time.Second

// withDeadline returns ctx bounded by d from now, unless ctx already ends
// sooner (or d is not positive).
func withDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
