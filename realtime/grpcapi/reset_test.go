package grpcapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
	"github.com/kilnhq/kiln/realtime/grpcapi"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// TestSubscribeResetsBeforeHistory: a Subscribe resuming before the
// stream's first remaining event (seqs 1…5 purged) learns it from the
// kiln-reset-first-seq header (as SSE's event: reset) and replays from
// there; one resuming inside the history gets no such header.
func TestSubscribeResetsBeforeHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	js := testsupport.StartNATS(t).JetStream(t)
	stream, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	require.NoError(t, err)
	publishN(ctx, t, js, 0, 10) // seqs 1…10
	require.NoError(t, stream.Purge(ctx, jetstream.WithPurgeSequence(6)))
	client := kilnv1.NewEventServiceClient(serveGRPC(ctx, t, js, grpcapi.Defaults()))

	for _, tc := range []struct {
		since     uint64
		wantReset []string
		wantFirst uint64
	}{
		{since: 0, wantReset: []string{"6"}, wantFirst: 6},
		{since: 1, wantReset: []string{"6"}, wantFirst: 6},
		{since: 5, wantReset: nil, wantFirst: 6},
		{since: 7, wantReset: nil, wantFirst: 8},
	} {
		sub, err := client.Subscribe(ctx, &kilnv1.SubscribeRequest{Resume: true, SinceSeq: tc.since})
		require.NoError(t, err)
		ev, err := sub.Recv()
		require.NoError(t, err)
		require.Equal(t, tc.wantFirst, ev.GetSeq(), "since_seq %d", tc.since)
		header, err := sub.Header()
		require.NoError(t, err)
		require.Equal(t, tc.wantReset, header.Get(grpcapi.ResetHeader), "since_seq %d", tc.since)
	}
}
