package grpcapi_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/ingest"
	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
	"github.com/kilnhq/kiln/realtime/grpcapi"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// unusedAppender is the ingest seam of a server whose test only reads.
type unusedAppender struct{}

func (unusedAppender) Append(context.Context, []byte) ([]ingest.Outcome, error) {
	return nil, fmt.Errorf("not used by this test")
}

func publishN(ctx context.Context, t *testing.T, js jetstream.JetStream, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		typ := []string{"sub.test", "other.test"}[i%2]
		body := fmt.Sprintf(`{"id":"ev-%03d","eventType":%q,"userId":"u","timestamp":1,"receivedAt":1}`, i, typ)
		_, err := js.Publish(ctx, schemas.Subject(typ), []byte(body))
		require.NoError(t, err)
	}
}

// TestSubscribersShareOneSubscription: 20 Subscribe streams at the end of
// the stream and 20 behind it each get exactly their events in order (the
// ones behind the stored ones first, with no gap or duplicate at the
// seam), while the stream has one consumer for all of them once the
// catch-ups are over (it had one per subscriber before the shared feed).
func TestSubscribersShareOneSubscription(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	js := testsupport.StartNATS(t).JetStream(t)
	stream, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	require.NoError(t, err)
	publishN(ctx, t, js, 0, 20) // stored before: ev-000 … ev-019

	conn := serveGRPC(ctx, t, js, grpcapi.Defaults()) // Subscribe reads no orders model
	client := kilnv1.NewEventServiceClient(conn)

	const n = 20
	subs := make([]kilnv1.EventService_SubscribeClient, 0, 2*n)
	for i := range 2 * n {
		// Even ones resume at the end of the stream (live only, whenever
		// their handler joins), odd ones behind it: after ev-003.
		req := &kilnv1.SubscribeRequest{Types: []string{"sub.*"}, Resume: true, SinceSeq: 20}
		if i%2 == 1 {
			req.SinceSeq = 4
		}
		sub, err := client.Subscribe(ctx, req)
		require.NoError(t, err)
		subs = append(subs, sub)
	}
	publishN(ctx, t, js, 20, 40)

	var wg sync.WaitGroup
	got := make([][]string, len(subs))
	for i, sub := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := 10 // ev-020 … ev-038, even ones
			if i%2 == 1 {
				want = 18 // ev-004 … ev-038, even ones
			}
			for range want {
				ev, err := sub.Recv()
				if err != nil {
					got[i] = append(got[i], "error: "+err.Error())
					return
				}
				got[i] = append(got[i], ev.GetId())
			}
		}()
	}
	wg.Wait()
	for i := range subs {
		var want []string
		from := 20
		if i%2 == 1 {
			from = 4
		}
		for k := from; k < 40; k += 2 {
			want = append(want, fmt.Sprintf("ev-%03d", k))
		}
		require.Equal(t, want, got[i], "subscriber %d", i)
	}
	require.Eventually(t, func() bool {
		info, err := stream.Info(ctx)
		return err == nil && info.State.Consumers == 1
	}, time.Minute, 10*time.Millisecond, "one consumer for %d subscribers once the catch-ups ended", len(subs))
}
