package httpserver_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/testsupport"
)

// TestServeListenerStopsWhenCancelledAtOnce: a role whose sibling fails at
// start cancels its listeners at once. fasthttp's Shutdown is a no-op on a
// server whose Serve has not registered its listener yet, which then
// served forever: the process hung instead of exiting with the sibling's
// error (seen as a standalone that never became ready and never said why).
func TestServeListenerStopsWhenCancelledAtOnce(t *testing.T) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan error, 1)
		app := httpserver.NewApp(httpserver.AppConfig{Log: testsupport.Logger(t)})
		go func() { done <- httpserver.ServeListener(ctx, app, ln, time.Second, testsupport.Logger(t)) }()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(time.Minute):
			t.Fatal("ServeListener did not return after its context was cancelled")
		}
	}
}
