package ssefanout_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	"github.com/kilnhq/kiln/loadtest/internal/ssefanout"
	"github.com/kilnhq/kiln/testsupport"
)

// TestFanOutAgainstStandalone runs a small sse_fanout against a standalone
// in this process and checks what it counts, not how fast it is.
func TestFanOutAgainstStandalone(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	kiln := standalonetest.Start(t, t.TempDir())
	res, err := ssefanout.Run(context.Background(), ssefanout.Options{
		URL: kiln.Base, Narrow: 20, Wide: 2, Rate: 200,
		Warmup: 200 * time.Millisecond, Duration: time.Second, Timeout: 10 * time.Second,
		GatewayPID: os.Getpid(), Log: testsupport.Logger(t),
	})
	require.NoError(t, err)
	t.Logf("%+v", res)
	require.Equal(t, ssefanout.Bench, res.Bench)
	require.Equal(t, 22, res.Clients)
	require.Zero(t, res.Dropped, "no client dropped")
	require.Zero(t, res.Missed, "the wide clients saw every id")
	require.Zero(t, res.PostErrors)
	require.Positive(t, float64(res.EventsPerS))
	require.Equal(t, res.ExpectedFramesPerS, res.FramesPerS, "every stored event reached every client that follows it")
	// 200 events/s for 1s: 20 to the narrow clients (one each), all to the 2 wide ones.
	require.InDelta(t, 20+2*float64(res.EventsPerS), float64(res.ExpectedFramesPerS), 2)
	require.Positive(t, float64(res.P99Ms))
	require.Positive(t, float64(res.ReceivedP99Ms))
	require.NotNil(t, res.RSSPerIdleClientKiB)
	require.NotNil(t, res.RSSUnderLoadKiB)
}
