package standalone_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
	"github.com/kilnhq/kiln/testsupport"
)

// TestGRPCSubscribeCutsASlowSubscriber: a subscriber that reads nothing
// while megabytes arrive is cut with RESOURCE_EXHAUSTED (not buffered
// without bound), gets what was sent before the cut, and resumes after the
// last seq it received with no gap.
func TestGRPCSubscribeCutsASlowSubscriber(t *testing.T) {
	admin := strconv.Itoa(testsupport.FreePort(t))
	in := standalonetest.Start(t, t.TempDir(), "ADMIN_PORT", admin,
		"GRPC_STREAM_BUFFER", "8", "GRPC_SLOW_TIMEOUT", "300ms")
	ctx := testCtx(t)
	events := kilnv1.NewEventServiceClient(dialGRPC(t, in.GRPCAddr))

	sub, err := events.Subscribe(ctx, &kilnv1.SubscribeRequest{Types: []string{"slow.test"}, Resume: true})
	require.NoError(t, err)
	pad := strings.Repeat("x", 4000)
	const total = 2000 // about 8 MB: far beyond HTTP/2's windows and the buffer
	for from := 0; from < total; from += 100 {
		var batch []*kilnv1.Event
		for i := from; i < from+100; i++ {
			batch = append(batch, &kilnv1.Event{Id: fmt.Sprintf("slow-%04d", i), EventType: "slow.test", UserId: "u",
				Timestamp: float64(time.Now().UnixMilli()), MetadataJson: fmt.Sprintf(`{"n":%d,"pad":%q}`, i, pad)})
		}
		resp, err := events.Publish(ctx, &kilnv1.PublishRequest{Events: batch})
		require.NoError(t, err)
		require.EqualValues(t, 100, resp.GetAccepted())
	}
	cutMetric := `kiln_grpc_calls_total{code="ResourceExhausted",method="/kiln.v1.EventService/Subscribe"} 1`
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://127.0.0.1:" + admin + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), cutMetric)
	}, time.Minute, 50*time.Millisecond, "the slow subscriber was never cut")

	var got []string
	var last uint64
	for {
		ev, err := sub.Recv()
		if err != nil {
			require.Equal(t, codes.ResourceExhausted, status.Code(err), err)
			require.Contains(t, status.Convert(err).Message(), "slow subscriber")
			break
		}
		got = append(got, ev.GetId())
		last = ev.GetSeq()
	}
	require.Less(t, len(got), total, "cut before the end")
	resumeSeq, err := strconv.ParseUint(sub.Trailer().Get("kiln-resume-seq")[0], 10, 64)
	require.NoError(t, err)
	require.LessOrEqual(t, resumeSeq, last)

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err = events.Subscribe(rctx, &kilnv1.SubscribeRequest{Types: []string{"slow.test"}, Resume: true, SinceSeq: last})
	require.NoError(t, err)
	for len(got) < total {
		ev, err := sub.Recv()
		require.NoError(t, err)
		got = append(got, ev.GetId())
	}
	for i, id := range got {
		require.Equal(t, fmt.Sprintf("slow-%04d", i), id, "no gap, no duplicate")
	}
}
