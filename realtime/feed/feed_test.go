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

// publish appends n events of typ. It returns its error instead of failing
// the test so that it can run on a goroutine the test waits for: a reader
// can receive the last event before its publisher has the ack.
func publish(ctx context.Context, js jetstream.JetStream, typ string, n int) error {
	for i := range n {
		body := fmt.Sprintf(`{"id":"%s-%d","eventType":%q,"userId":"u","timestamp":1,"receivedAt":1}`, typ, i, typ)
		if _, err := js.Publish(ctx, schemas.Subject(typ), []byte(body)); err != nil {
			return fmt.Errorf("publish %s-%d: %w", typ, i, err)
		}
	}
	return nil
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
	require.NoError(t, publish(ctx, js, "order.created", 3)) // before the feed: not replayed

	f := feed.New(js, testsupport.Logger(t))
	slow := f.Join(4)
	reader := f.Join(64) // room for every event: never cut
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	<-f.Ready()

	published := make(chan error, 1)
	go func() {
		err := publish(ctx, js, "page_view", 5) // not followed
		if err == nil {
			err = publish(ctx, js, "chat.message", 50)
		}
		published <- err
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
	require.NoError(t, <-published)
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
