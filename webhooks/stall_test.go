package webhooks_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/webhooks/delivery"
	"github.com/kilnhq/kiln/webhooks/endpoint"
)

// TestSlowStreamAcksStallNoEvent: the fan-out's async-publish window is
// full while the server takes 300 ms to ack (a loaded server): publishing
// waits for acks instead of failing after the client's 200 ms stall wait,
// so no event is naked and fanned out again.
func TestSlowStreamAcksStallNoEvent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for range 3 {
		h.createEndpoint("http://127.0.0.1:9/")
	}
	h.stop()

	// A link to NATS that delivers everything the server sends 300 ms late.
	slow := startDelayProxy(t, strings.TrimPrefix(natsURL(t, h.js), "nats://"), 300*time.Millisecond)
	nc, err := nats.Connect("nats://" + slow)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4))
	require.NoError(t, err)

	const events = 10
	for range events {
		h.publish("order.created")
	}
	var logs syncBuffer
	f := &delivery.Fanout{JetStream: js, Endpoints: endpoint.NewCache(endpoint.NewStore(h.db), time.Minute),
		Deliveries: delivery.NewLog(h.db), Log: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	var done sync.WaitGroup
	done.Go(func() { _ = f.Run(ctx) })
	t.Cleanup(func() { cancel(); done.Wait() })

	st, err := h.js.Stream(t.Context(), delivery.Stream)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := st.Info(t.Context())
		return err == nil && info.State.Msgs == 3*events
	}, 3*wait, tick, "a job per event and endpoint")
	cons, err := h.js.Consumer(t.Context(), schemas.StreamName, delivery.FanoutDurable)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}, 3*wait, tick, "every event acked")
	info, err := cons.Info(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(events), info.Delivered.Consumer, "events delivered to the fan-out once each")
	require.NotContains(t, logs.String(), "webhooks: queue job")
}

func natsURL(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	return js.Conn().ConnectedUrl()
}

// startDelayProxy forwards connections to target, holding back what
// target sends by delay (in order); what clients send goes at once.
func startDelayProxy(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(server, client); _ = server.Close() })
			wg.Go(func() { delayCopy(client, server, delay); _ = client.Close() })
		}
	})
	return ln.Addr().String()
}

func delayCopy(dst io.Writer, src io.Reader, delay time.Duration) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		for {
			b := make([]byte, 32<<10)
			n, err := src.Read(b)
			if n > 0 {
				q <- chunk{b[:n], time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.b); err != nil {
			for range q {
			}
			return
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
