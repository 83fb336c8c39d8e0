package feed_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/realtime/feed"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

func publish(ctx context.Context, t *testing.T, js jetstream.JetStream, typ string, n int) {
	t.Helper()
	for i := range n {
		body := fmt.Sprintf(`{"id":"%s-%d","eventType":%q,"userId":"u","timestamp":1,"receivedAt":1}`, typ, i, typ)
		_, err := js.Publish(ctx, schemas.Subject(typ), []byte(body))
		require.NoError(t, err)
	}
}

// TestFeedCutsTheSlowMemberOnly: one member that reads nothing is cut with
// ErrSlow once its buffer is full; a reading member gets every followed
// event, in stream order, and nothing else; events stored before the feed
// started are not replayed.
func TestFeedCutsTheSlowMemberOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js := testsupport.StartNATS(t).JetStream(t)
	_, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	require.NoError(t, err)
	publish(ctx, t, js, "order.created", 3) // before the feed: not replayed

	f := feed.New(js, testsupport.Logger(t))
	slow := f.Join(4)
	reader := f.Join(64) // room for every event: never cut
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	<-f.Ready()

	go func() {
		publish(ctx, t, js, "page_view", 5) // not followed
		publish(ctx, t, js, "chat.message", 50)
	}()
	for i := range 50 {
		select {
		case ev := <-reader.C:
			require.Equal(t, fmt.Sprintf("chat.message-%d", i), ev.ID)
		case <-reader.Done():
			t.Fatalf("the reading member was cut: %v", reader.Err())
		case <-ctx.Done():
			t.Fatal("the reading member missed events")
		}
	}
	select {
	case <-slow.Done():
		require.ErrorIs(t, slow.Err(), feed.ErrSlow)
	case <-ctx.Done():
		t.Fatal("the slow member was never cut")
	}
	require.Equal(t, 1, f.Len())
	stop()
	require.NoError(t, <-done)
	<-reader.Done()
	require.ErrorIs(t, reader.Err(), feed.ErrClosed)
}

// TestJoiningAStoppedFeedThenLeaving: a member that joins after the feed
// stopped is ended at once with ErrClosed, and leaving it (as every reader
// does when its loop ends) does not close its Done twice. Socket.IO's Run
// joined after a shutdown and panicked with "close of closed channel".
func TestJoiningAStoppedFeedThenLeaving(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	js := testsupport.StartNATS(t).JetStream(t)
	_, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	require.NoError(t, err)
	f := feed.New(js, testsupport.Logger(t))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	<-f.Ready()
	stop()
	require.NoError(t, <-done)

	m := f.Join(8)
	<-m.Done()
	require.ErrorIs(t, m.Err(), feed.ErrClosed)
	require.NotPanics(t, m.Leave)
	require.NotPanics(t, m.Leave)
	require.ErrorIs(t, m.Err(), feed.ErrClosed)
}
