package consume

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
)

// failing is a projection whose first fail calls return err.
type failing struct {
	fail  int
	err   error
	calls int
}

func (f *failing) Apply(context.Context, []schemas.Event) error {
	if f.calls++; f.calls <= f.fail {
		return f.err
	}
	return nil
}

func TestApplyWithRetry(t *testing.T) {
	busy := errors.New("SQLITE_BUSY")
	t.Run("a store error is retried until the write goes through", func(t *testing.T) {
		p := &failing{fail: batchAttempts - 1, err: busy}
		require.NoError(t, ApplyWithRetry(t.Context(), p, nil))
		require.Equal(t, batchAttempts, p.calls)
	})
	t.Run("it gives up after batchAttempts tries with the store's error", func(t *testing.T) {
		p := &failing{fail: 100, err: busy}
		require.ErrorIs(t, ApplyWithRetry(t.Context(), p, nil), busy)
		require.Equal(t, batchAttempts, p.calls)
	})
	t.Run("an unprojectable batch is not retried", func(t *testing.T) {
		p := &failing{fail: 100, err: Unprojectable(busy)}
		require.True(t, IsUnprojectable(ApplyWithRetry(t.Context(), p, nil)))
		require.Equal(t, 1, p.calls)
	})
	t.Run("a cancelled context ends the waits", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		p := &failing{fail: 100, err: busy}
		require.Error(t, ApplyWithRetry(ctx, p, nil))
		require.Equal(t, 1, p.calls)
	})
}
