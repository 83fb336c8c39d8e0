package socketio

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEmitRightAfterConnect: a client may emit as soon as it reads the
// CONNECT answer, as socket.io-client does in its "connect" handler. The
// library wrote that answer before it recorded the socket, so an event read
// in between found no socket and the server closed the connection (an
// "invalid state" close, 1006 on the client): on a busy server, a few
// clients in a hundred. One client after another, each closed as the next
// connects, makes the window likelier than many at once.
func TestEmitRightAfterConnect(t *testing.T) {
	h := startServer(t, Config{HandshakeRate: 1e6}) // many connects in a row, none refused
	const rounds, clients = 400, 1
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := range clients {
			wg.Go(func() {
				if err := emitOnConnect(t, h); err != nil {
					errs <- fmt.Errorf("round %d client %d: %w", round, i, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	}
}

// emitOnConnect joins /notifications and emits an order:update the moment
// the CONNECT answer arrives, then waits for its ack (an error ack: the
// update is not an object). It reports instead of failing: it runs on its
// own goroutine.
func emitOnConnect(t *testing.T, h *harness) error {
	c, err := h.tryDial(t)
	if err != nil {
		return err
	}
	defer c.ws.Close()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte("40"+NotificationsNamespace+",")); err != nil {
		return err
	}
	for {
		p, err := c.read()
		if err != nil {
			return fmt.Errorf("waiting for the CONNECT answer: %w", err)
		}
		if strings.HasPrefix(p, "40"+NotificationsNamespace+",") {
			break
		}
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte("42"+NotificationsNamespace+`,1["order:update","hello"]`)); err != nil {
		return err
	}
	for {
		p, err := c.read()
		if err != nil {
			return fmt.Errorf("waiting for the ack of an event sent right after connecting: %w", err)
		}
		if strings.HasPrefix(p, "43"+NotificationsNamespace+",1[") {
			return nil
		}
	}
}

// TestEmitThenLeave: a message a client sends is stored even when the client
// leaves right after it, as a page does that sends and navigates away:
// socket.io-client writes the EVENT, then a DISCONNECT of the namespace (or
// the WebSocket closes). The library handled each packet on the socket's
// queue but emitted the event to Kiln's handler from a second task queued
// behind it; a DISCONNECT already queued ran first and the event was
// dropped as "received after disconnection". Node's server emits before
// it reads the next packet.
//
// Each client closes as a browser does (closeLikeABrowser): the test once
// dropped its WebSocket's TCP connection at once, with the chat broadcasts
// of the clients before it unread, and the kernel then resets the
// connection, which discards what the server had received and not yet
// read — the message itself, at times (49 of 50 in one loaded CI run), a
// loss no server can prevent.
func TestEmitThenLeave(t *testing.T) {
	h := startServer(t, Config{HandshakeRate: 1e6})
	for _, tt := range []struct {
		name  string
		leave func(c *client)
	}{
		{"disconnect packet", func(c *client) { c.send("41" + ChatNamespace + ",") }},
		{"close", func(*client) {}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const rounds = 50
			before := h.stored(t, chatMessage)
			for i := range rounds {
				c := h.dialClient(t).joined(ChatNamespace)
				c.send("42" + ChatNamespace + `,["message",{"author":"leaver","text":"` + fmt.Sprint(i) + `"}]`)
				tt.leave(c)
				c.closeLikeABrowser()
			}
			if !assert.Eventually(t, func() bool { return h.stored(t, chatMessage)-before >= rounds }, 2*time.Minute, 50*time.Millisecond) {
				t.Fatalf("stored %d of %d messages sent right before leaving", h.stored(t, chatMessage)-before, rounds)
			}
			require.Equal(t, uint64(rounds), h.stored(t, chatMessage)-before)
		})
	}
}

// closeLikeABrowser closes the WebSocket as a browser does: a close frame,
// then reading what the server still sends until it closes too.
func (c *client) closeLikeABrowser() {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Minute))
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(2 * time.Minute))
		if _, _, err := c.ws.ReadMessage(); err != nil {
			break
		}
	}
	_ = c.ws.Close()
}
