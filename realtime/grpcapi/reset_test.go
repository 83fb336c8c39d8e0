package grpcapi_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
	"github.com/kilnhq/kiln/realtime/grpcapi"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// TestSubscribeResetsBeforeHistory: a Subscribe resuming before the
// stream's first remaining event (seqs 1…5 purged) learns it from the
// kiln-reset-first-seq header (as SSE's event: reset) and replays from
// there; one resuming inside the history gets no such header. Each asks
// the stream for its first event once (resumeFrom), not again at its first
// catch-up.
func TestSubscribeResetsBeforeHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	watch, err := nats.Connect(ns.URL())
	require.NoError(t, err)
	t.Cleanup(watch.Close)
	infos, err := watch.SubscribeSync("$JS.API.STREAM.INFO." + schemas.StreamName)
	require.NoError(t, err)
	require.NoError(t, watch.Flush())
	stream, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	require.NoError(t, err)
	publishN(ctx, t, js, 0, 10) // seqs 1…10
	require.NoError(t, stream.Purge(ctx, jetstream.WithPurgeSequence(6)))
	client := kilnv1.NewEventServiceClient(serveGRPC(ctx, t, js, grpcapi.Defaults()))
	// The first subscriber starts the server's feed, which reads the
	// stream's position once.
	first, err := client.Subscribe(ctx, &kilnv1.SubscribeRequest{Resume: true, SinceSeq: 9})
	require.NoError(t, err)
	_, err = first.Recv()
	require.NoError(t, err)

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
		require.NoError(t, watch.Flush())
		before, _, err := infos.Pending()
		require.NoError(t, err)
		sub, err := client.Subscribe(ctx, &kilnv1.SubscribeRequest{Resume: true, SinceSeq: tc.since})
		require.NoError(t, err)
		ev, err := sub.Recv()
		require.NoError(t, err)
		require.Equal(t, tc.wantFirst, ev.GetSeq(), "since_seq %d", tc.since)
		header, err := sub.Header()
		require.NoError(t, err)
		require.Equal(t, tc.wantReset, header.Get(grpcapi.ResetHeader), "since_seq %d", tc.since)
		require.NoError(t, watch.Flush())
		after, _, err := infos.Pending()
		require.NoError(t, err)
		require.Equal(t, 1, after-before, "stream info requests of a resuming Subscribe (since_seq %d)", tc.since)
	}
}

// TestSubscribeFallingBehindPastRemovedEvents: a subscriber falls a full
// buffer behind the feed; meanwhile the stream's limits remove the events
// it needed next. When it rejoins it does not skip to the first remaining
// event in silence: the call ends OutOfRange with the kiln-reset-first-seq
// and kiln-resume-seq trailers, and resuming from the latter is answered
// with the reset header and the first remaining event.
func TestSubscribeFallingBehindPastRemovedEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	js := testsupport.StartNATS(t).JetStream(t)
	stream, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	require.NoError(t, err)
	cfg := grpcapi.Defaults()
	cfg.SubscribeBuffer = 2        // pending and the feed buffer: two events each
	cfg.SlowTimeout = time.Hour    // never cut as slow: falls behind and rejoins
	cfg.MaxMessageBytes = 64 << 10 // events of 16 KiB fit
	conn := serveGRPC(ctx, t, js, cfg)
	client := kilnv1.NewEventServiceClient(conn)
	// The slow one on a connection of its own with fixed 64 KiB windows: no
	// BDP estimate grows them to take every event.
	slowConn, err := grpc.NewClient(conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	require.NoError(t, err)
	t.Cleanup(func() { _ = slowConn.Close() })

	pad := strings.Repeat("p", 16<<10)
	publish := func(i int) {
		body := fmt.Sprintf(`{"id":"big-%02d","eventType":"sub.test","userId":"u","timestamp":1,"receivedAt":1,"metadata":{"pad":%q}}`, i, pad)
		_, err := js.Publish(ctx, schemas.Subject("sub.test"), []byte(body))
		require.NoError(t, err)
	}
	// Both subscribers have read seq 1: both have joined the feed.
	publish(0)
	joined := func(client kilnv1.EventServiceClient) kilnv1.EventService_SubscribeClient {
		sub, err := client.Subscribe(ctx, &kilnv1.SubscribeRequest{Resume: true})
		require.NoError(t, err)
		ev, err := sub.Recv()
		require.NoError(t, err)
		require.EqualValues(t, 1, ev.GetSeq())
		return sub
	}
	slow, fast := joined(kilnv1.NewEventServiceClient(slowConn)), joined(client)

	// 40 more events of 16 KiB: the slow client reads nothing, so its
	// HTTP/2 window (64 KiB) fills, then its pending events, then its feed
	// buffer. The fast one reads them all: the feed has fanned each out.
	const last = 41
	for i := 1; i < last; i++ {
		publish(i)
	}
	for seq := uint64(1); seq < last; {
		ev, err := fast.Recv()
		require.NoError(t, err)
		seq = ev.GetSeq()
	}
	// The stream's limits remove all but the last event.
	require.NoError(t, stream.Purge(ctx, jetstream.WithPurgeSequence(last)))

	got := uint64(1)
	var end error
	for {
		ev, err := slow.Recv()
		if err != nil {
			end = err
			break
		}
		require.Equal(t, got+1, ev.GetSeq(), "in order, no gap")
		got = ev.GetSeq()
	}
	require.Equal(t, codes.OutOfRange, status.Code(end), "%v", end)
	require.Less(t, got, uint64(last-1), "the slow client fell behind")
	trailer := slow.Trailer()
	require.Equal(t, []string{fmt.Sprint(last)}, trailer.Get(grpcapi.ResetHeader))
	// The resume trailer never names an event the client did not get (it
	// may lag one still in flight when the call ended: the client resumes
	// after the last seq it received).
	resume, err := strconv.ParseUint(trailer.Get(grpcapi.ResumeTrailer)[0], 10, 64)
	require.NoError(t, err)
	require.LessOrEqual(t, resume, got)

	resumed, err := client.Subscribe(ctx, &kilnv1.SubscribeRequest{Resume: true, SinceSeq: got})
	require.NoError(t, err)
	ev, err := resumed.Recv()
	require.NoError(t, err)
	require.EqualValues(t, last, ev.GetSeq())
	header, err := resumed.Header()
	require.NoError(t, err)
	require.Equal(t, []string{fmt.Sprint(last)}, header.Get(grpcapi.ResetHeader))
}

// TestCatchUpIsOneConsumer: a Subscribe resuming 1,000 events back reads
// them through one pull subscription. Each fetch of an ordered consumer
// re-creates it on the server: a catch-up fetched 256 at a time asked for
// a new consumer per batch.
func TestCatchUpIsOneConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	_, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	require.NoError(t, err)
	publishN(ctx, t, js, 0, 1000) // seqs 1…1000
	client := kilnv1.NewEventServiceClient(serveGRPC(ctx, t, js, grpcapi.Defaults()))
	// The server's feed starts with the first subscriber.
	first, err := client.Subscribe(ctx, &kilnv1.SubscribeRequest{Resume: true, SinceSeq: 999})
	require.NoError(t, err)
	_, err = first.Recv()
	require.NoError(t, err)

	watch, err := nats.Connect(ns.URL())
	require.NoError(t, err)
	t.Cleanup(watch.Close)
	creates, err := watch.SubscribeSync("$JS.API.CONSUMER.CREATE." + schemas.StreamName + ".>")
	require.NoError(t, err)
	require.NoError(t, watch.Flush())
	sub, err := client.Subscribe(ctx, &kilnv1.SubscribeRequest{Resume: true, SinceSeq: 0})
	require.NoError(t, err)
	for want := uint64(1); want <= 1000; want++ {
		ev, err := sub.Recv()
		require.NoError(t, err)
		require.Equal(t, want, ev.GetSeq())
	}
	require.NoError(t, watch.Flush())
	n, _, err := creates.Pending()
	require.NoError(t, err)
	require.Equal(t, 1, n, "consumers created to catch up 1,000 events")
}
