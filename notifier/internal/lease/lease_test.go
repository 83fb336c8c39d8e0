package lease

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/testsupport"
)

// TestOneHolderAtATime: a second process cannot take a held lease, takes
// it once the holder stops renewing and the key expires, and not before.
func TestOneHolderAtATime(t *testing.T) {
	t.Parallel()
	ns := testsupport.StartNATS(t)
	ctx := context.Background()
	const ttl = 2 * time.Second
	kv, err := Open(ctx, ns.JetStream(t), ttl, 1)
	require.NoError(t, err)
	a := &Lease{KV: kv, TTL: ttl, Holder: "a", Log: testsupport.Logger(t)}
	b := &Lease{KV: kv, TTL: ttl, Holder: "b", Log: testsupport.Logger(t)}
	require.NoError(t, a.Acquire(ctx))

	holdCtx, stopHolding := context.WithCancel(ctx)
	held := make(chan error, 1)
	go func() { held <- a.Hold(holdCtx) }()
	// Held and renewed across several TTLs: b cannot take it.
	short, cancel := context.WithTimeout(ctx, 3*ttl)
	require.ErrorIs(t, b.Acquire(short), context.DeadlineExceeded)
	cancel()

	stopHolding() // a stops renewing, as a killed process does, without releasing
	require.NoError(t, <-held)
	stopped := time.Now()
	require.NoError(t, b.Acquire(ctx))
	require.GreaterOrEqual(t, time.Since(stopped), ttl-ttl/4-100*time.Millisecond,
		"taken only once the last renewal expired")

	// a's revision is stale: its release leaves b's lease alone.
	require.NoError(t, a.Release(ctx))
	e, err := kv.Get(ctx, Key)
	require.NoError(t, err)
	require.Equal(t, "b", string(e.Value()))
}

// TestHolderThatCannotRenewStopsBeforeExpiry: with NATS gone, Hold returns
// ErrLost before the key could have expired on the server (fencing).
func TestHolderThatCannotRenewStopsBeforeExpiry(t *testing.T) {
	t.Parallel()
	ns := testsupport.StartNATS(t)
	ctx := context.Background()
	const ttl = 3 * time.Second
	kv, err := Open(ctx, ns.JetStream(t), ttl, 1)
	require.NoError(t, err)
	a := &Lease{KV: kv, TTL: ttl, Holder: "a", Log: testsupport.Logger(t)}
	acquired := time.Now()
	require.NoError(t, a.Acquire(ctx))
	ns.Shutdown()
	err = a.Hold(ctx)
	require.ErrorIs(t, err, ErrLost)
	require.Less(t, time.Since(acquired), ttl, "stopped before the lease could expire")
}
