package live

import (
	"context"
	"fmt"
	"time"

	"github.com/kilnhq/kiln/schemas"
)

// boundsTTL is how long the stream's bounds, once asked, answer every
// resuming client: a gateway restart with thousands of resuming clients
// asks a few times, not once per client.
const boundsTTL = time.Second

// bounds is the last answer about the stream's first and last sequences.
type bounds struct {
	first, last uint64
	err         error
	at          time.Time
}

// streamBounds are the stream's first and last sequences, as the server
// said at most boundsTTL ago (a failure is kept as long). One request is in
// flight at a time; the others wait for its answer.
func (h *Hub) streamBounds(ctx context.Context) (uint64, uint64, error) {
	select {
	case h.boundsLock <- struct{}{}:
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("stream %s: %w", schemas.StreamName, ctx.Err())
	}
	defer func() { <-h.boundsLock }()
	if b := h.bounds; !b.at.IsZero() && time.Since(b.at) < boundsTTL {
		return b.first, b.last, b.err
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	b := bounds{at: time.Now()}
	st, err := h.opts.JetStream.Stream(rctx, schemas.StreamName)
	if err != nil {
		b.err = fmt.Errorf("stream %s: %w", schemas.StreamName, err)
		if ctx.Err() != nil {
			return 0, 0, b.err // this client left: not an answer for the others
		}
	} else {
		state := st.CachedInfo().State
		b.first, b.last = state.FirstSeq, state.LastSeq
	}
	h.bounds = b
	return b.first, b.last, b.err
}
