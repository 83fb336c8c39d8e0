package grpcapi_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/ingest"
	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
	ordersv1 "github.com/kilnhq/kiln/realtime/gen/orders/v1"
	"github.com/kilnhq/kiln/realtime/grpcapi"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// Issue 21: hostile clients of the gRPC server. Each case ends with the
// server answering, the heap back near where it was, and nothing stored
// that should not be.

// rawCodec sends and receives bytes as they are: malformed messages.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// hostileServer is a gRPC server on a real ingest path over embedded NATS.
type hostileServer struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	conn   *grpc.ClientConn
	health *grpc.ClientConn
}

func newHostileServer(ctx context.Context, t *testing.T, cfg grpcapi.Config) *hostileServer {
	t.Helper()
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	icfg, err := ingest.LoadConfig(map[string]string{"NATS_URL": ns.URL()})
	require.NoError(t, err)
	log := testsupport.Logger(t)
	nc, err := connect.NATS(ns.URL(), t.Name(), connect.Append, log)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	svc, err := ingest.New(ctx, icfg, ingest.Deps{NATS: nc, Metrics: prometheus.NewRegistry(), Log: log})
	require.NoError(t, err)
	stream, err := js.Stream(ctx, schemas.StreamName)
	require.NoError(t, err)
	conn := serveGRPCWith(ctx, t, js, cfg, svc)
	return &hostileServer{js: js, stream: stream, conn: conn, health: dial(t, conn.Target())}
}

// stored is how many events the stream holds.
func (h *hostileServer) stored(ctx context.Context, t *testing.T) uint64 {
	t.Helper()
	info, err := h.stream.Info(ctx)
	require.NoError(t, err)
	return info.State.Msgs
}

// answers checks that the server still serves a call, on a connection of
// its own.
func (h *hostileServer) answers(ctx context.Context, t *testing.T) {
	t.Helper()
	callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(h.health).Check(callCtx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
}

// heapInuse is the live heap after two collections: what is still
// referenced. (HeapInuse would count spans kept by a few survivors among
// the objects of 20,000 finished streams: fragmentation, not a leak.)
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// settles waits until the heap is back within slack of base and the
// goroutines within 50 of baseG (streams end asynchronously).
func settles(t *testing.T, base uint64, baseG int, slack uint64) {
	t.Helper()
	var heap uint64
	var g int
	ok := assert.Eventually(t, func() bool {
		heap, g = heapInuse(), runtime.NumGoroutine()
		return heap <= base+slack && g <= baseG+50
	}, 2*time.Minute, 100*time.Millisecond)
	t.Logf("heap %d KiB (base %d KiB, slack %d KiB), goroutines %d (base %d)", heap>>10, base>>10, slack>>10, g, baseG)
	if !ok {
		buf := make([]byte, 1<<20)
		t.Fatalf("not settled; goroutines:\n%s", buf[:runtime.Stack(buf, true)])
	}
}

// scale is how many hostile streams a case opens: KILN_HOSTILE_SCALE, or
// def (sized to run in seconds in make test).
func scale(t *testing.T, def int) int {
	if v := os.Getenv("KILN_HOSTILE_SCALE"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "KILN_HOSTILE_SCALE")
		return n
	}
	return def
}

func TestHostileGRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := grpcapi.Defaults()
	cfg.MaxMessageBytes = 64 << 10
	cfg.MaxSubscribes = 300
	h := newHostileServer(ctx, t, cfg)
	events := kilnv1.NewEventServiceClient(h.conn)
	orders := ordersv1.NewOrderServiceClient(h.conn)
	resp, err := events.Publish(ctx, &kilnv1.PublishRequest{Events: []*kilnv1.Event{
		{Id: "seed-1", EventType: "hostile.seed", UserId: "u", Timestamp: 1}}})
	require.NoError(t, err)
	require.EqualValues(t, 1, resp.GetAccepted(), "%v", resp)
	h.answers(ctx, t)
	baseHeap, baseG := heapInuse(), runtime.NumGoroutine()
	done := func(t *testing.T, wantStored uint64) {
		t.Helper()
		h.answers(ctx, t)
		require.Equal(t, wantStored, h.stored(ctx, t), "events stored")
		settles(t, baseHeap, baseG, 24<<20)
	}

	t.Run("oversized messages", func(t *testing.T) {
		big := strings.Repeat("x", 100<<10)
		_, err := events.Publish(ctx, &kilnv1.PublishRequest{Events: []*kilnv1.Event{
			{EventType: "hostile.big", UserId: "u", Timestamp: 1, MetadataJson: `{"k":"` + big + `"}`}}})
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		sub, err := events.Subscribe(ctx, &kilnv1.SubscribeRequest{UserId: big})
		require.NoError(t, err)
		_, err = sub.Recv()
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		chat, err := orders.ChatOrders(ctx)
		require.NoError(t, err)
		require.NoError(t, chat.Send(&ordersv1.OrderChatMessage{Author: "a", Text: big}))
		_, err = chat.Recv()
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		// Within the message limit, an event over ingest's own limits is
		// refused per event.
		resp, err := events.Publish(ctx, &kilnv1.PublishRequest{Events: []*kilnv1.Event{
			{EventType: strings.Repeat("t", 200), UserId: "u", Timestamp: 1},
			{EventType: "hostile.user", UserId: strings.Repeat("u", 300), Timestamp: 1}}})
		require.NoError(t, err)
		require.EqualValues(t, 2, resp.GetRejected(), "%v", resp)
		done(t, 1)
	})

	t.Run("malformed messages", func(t *testing.T) {
		raw := grpc.ForceCodec(rawCodec{})
		for _, msg := range [][]byte{
			{0xff, 0xff, 0xff, 0xff},                  // not protobuf
			{0x0a, 0x7f, 0x01},                        // a field longer than the message
			{0x12, 0x01, 0xff},                        // user_id (proto3 string) not UTF-8
			{0x0a, 0x05, 0x12, 0x03, 'a', 0xc3, 0x28}, // Publish: event_type not UTF-8
			{0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, // a varint of 11 bytes
		} {
			var out []byte
			err := h.conn.Invoke(ctx, "/kiln.v1.EventService/Publish", &msg, &out, raw)
			require.Contains(t, []codes.Code{codes.Internal, codes.InvalidArgument}, status.Code(err), "Publish %x: %v", msg, err)
			err = h.conn.Invoke(ctx, "/orders.OrderService/CreateOrder", &msg, &out, raw)
			require.Contains(t, []codes.Code{codes.Internal, codes.InvalidArgument}, status.Code(err), "CreateOrder %x: %v", msg, err)
			st, err := h.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/kiln.v1.EventService/Subscribe", raw)
			require.NoError(t, err)
			require.NoError(t, st.SendMsg(&msg))
			require.NoError(t, st.CloseSend())
			err = st.RecvMsg(&out)
			require.Contains(t, []codes.Code{codes.Internal, codes.InvalidArgument}, status.Code(err), "Subscribe %x: %v", msg, err)
		}
		// Calls of methods and services that do not exist.
		var out []byte
		in := []byte{}
		err := h.conn.Invoke(ctx, "/kiln.v1.EventService/Nope", &in, &out, raw)
		require.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)
		err = h.conn.Invoke(ctx, "/nope.Service/Publish", &in, &out, raw)
		require.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)
		done(t, 1)
	})

	t.Run("bad filters and batches", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			req  *kilnv1.SubscribeRequest
		}{
			{"101 patterns", &kilnv1.SubscribeRequest{Types: make([]string, 101)}},
			{"a pattern of 60 KB", &kilnv1.SubscribeRequest{Types: []string{strings.Repeat("a", 60<<10)}}},
			{"a bad pattern", &kilnv1.SubscribeRequest{Types: []string{"a.>.b"}}},
			{"an empty pattern", &kilnv1.SubscribeRequest{Types: []string{""}}},
			{"a user id of 300 bytes", &kilnv1.SubscribeRequest{UserId: strings.Repeat("u", 300)}},
		} {
			for i := range tc.req.Types {
				if tc.req.Types[i] == "" && tc.name == "101 patterns" {
					tc.req.Types[i] = fmt.Sprintf("t%d.*", i)
				}
			}
			callCtx, cancelCall := context.WithTimeout(ctx, time.Minute) // accepted, it would wait for ever
			sub, err := events.Subscribe(callCtx, tc.req)
			require.NoError(t, err)
			_, err = sub.Recv()
			cancelCall()
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%s: %v", tc.name, err)
			require.Less(t, len(status.Convert(err).Message()), 1024, "%s: the request is not echoed", tc.name)
		}
		// A batch over INGEST_MAX_BATCH is refused whole.
		batch := make([]*kilnv1.Event, 1001)
		for i := range batch {
			batch[i] = &kilnv1.Event{EventType: "hostile.batch", UserId: "u", Timestamp: 1}
		}
		_, err := events.Publish(ctx, &kilnv1.PublishRequest{Events: batch})
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		_, err = events.Publish(ctx, &kilnv1.PublishRequest{})
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		done(t, 1)
	})

	t.Run("thousands of streams", func(t *testing.T) {
		n := scale(t, 1500)
		conns := make([]*grpc.ClientConn, 1+n/int(cfg.MaxConcurrentStreams))
		for i := range conns {
			conns[i] = dial(t, h.conn.Target())
		}
		subCtx, cancelSubs := context.WithCancel(ctx)
		var (
			wg                sync.WaitGroup
			mu                sync.Mutex
			served, exhausted int
			others            []string
		)
		for i := range n {
			wg.Go(func() {
				sub, err := kilnv1.NewEventServiceClient(conns[i%len(conns)]).Subscribe(subCtx,
					&kilnv1.SubscribeRequest{Resume: true, Types: []string{"hostile.never"}})
				if err == nil {
					// A served stream gets the response headers; a refused one
					// ends with its status alone.
					var md metadata.MD
					md, err = sub.Header()
					if err == nil && md != nil {
						mu.Lock()
						served++
						mu.Unlock()
						return
					}
					if err == nil {
						_, err = sub.Recv()
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if status.Code(err) == codes.ResourceExhausted && strings.Contains(err.Error(), "GRPC_MAX_SUBSCRIBES") {
					exhausted++
				} else {
					others = append(others, fmt.Sprint(err))
				}
			})
		}
		wg.Wait()
		t.Logf("%d Subscribe streams: %d served, %d refused with RESOURCE_EXHAUSTED", n, served, exhausted)
		require.Empty(t, others)
		require.Equal(t, cfg.MaxSubscribes, served)
		require.Equal(t, n-cfg.MaxSubscribes, exhausted)
		h.answers(ctx, t)
		cancelSubs()
		for _, c := range conns {
			require.NoError(t, c.Close())
		}
		// Every slot is free again.
		require.Eventually(t, func() bool {
			callCtx, cancelCall := context.WithTimeout(ctx, 10*time.Second)
			defer cancelCall()
			sub, err := events.Subscribe(callCtx, &kilnv1.SubscribeRequest{Resume: true})
			if err != nil {
				return false
			}
			_, err = sub.Recv()
			return err == nil
		}, time.Minute, 50*time.Millisecond)
		done(t, 1)
	})

	t.Run("cancelled streams", func(t *testing.T) {
		publishN(ctx, t, h.js, 0, 300) // seqs 2…301, stored behind every resuming stream
		n := scale(t, 1500) / 5
		var wg sync.WaitGroup
		var mu sync.Mutex
		var gaps []string
		for i := range n {
			wg.Go(func() {
				// Every other one reads its first event (cancelled mid
				// catch-up), which is the one after since_seq: no gap.
				subCtx, cancelSub := context.WithTimeout(ctx, 2*time.Minute)
				defer cancelSub()
				since := uint64(i % 7)
				sub, err := events.Subscribe(subCtx, &kilnv1.SubscribeRequest{Resume: true, SinceSeq: since})
				if err != nil || i%2 == 1 {
					return
				}
				ev, err := sub.Recv()
				if status.Code(err) == codes.ResourceExhausted {
					return
				}
				if err != nil || ev.GetSeq() != since+1 {
					mu.Lock()
					gaps = append(gaps, fmt.Sprintf("since_seq %d: got seq %d, %v", since, ev.GetSeq(), err))
					mu.Unlock()
				}
			})
			wg.Go(func() {
				chatCtx, cancelChat := context.WithCancel(ctx)
				defer cancelChat()
				chat, err := orders.ChatOrders(chatCtx)
				if err == nil && i%2 == 0 {
					_ = chat.CloseSend()
				}
			})
		}
		wg.Wait()
		require.Empty(t, gaps)
		// The catch-up consumers are deleted with their streams: the feed's
		// is the one left.
		require.Eventually(t, func() bool {
			info, err := h.stream.Info(ctx)
			return err == nil && info.State.Consumers <= 1
		}, 2*time.Minute, 100*time.Millisecond)
		done(t, 301)
	})
}

// TestSubscribeResumingPastTheEndGoesLive: a since_seq past the stream's
// last event (from another stream, or math.MaxUint64) is live from the
// last event, as GET /stream does, without a reset header; Subscribe
// waited silently until the stream reached since_seq before (and for
// math.MaxUint64 sent a reset header: since_seq+1 wrapped to 0).
func TestSubscribeResumingPastTheEndGoesLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	js := testsupport.StartNATS(t).JetStream(t)
	_, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	require.NoError(t, err)
	publishN(ctx, t, js, 0, 4) // seqs 1…4
	client := kilnv1.NewEventServiceClient(serveGRPC(ctx, t, js, grpcapi.Defaults()))
	next := 4
	for _, since := range []uint64{1000, math.MaxUint64 - 1, math.MaxUint64} {
		sub, err := client.Subscribe(ctx, &kilnv1.SubscribeRequest{Resume: true, SinceSeq: since})
		require.NoError(t, err)
		header, err := sub.Header()
		require.NoError(t, err)
		require.Empty(t, header.Get(grpcapi.ResetHeader), "since_seq %d", since)
		publishN(ctx, t, js, next, next+1)
		next++
		recvCtx, cancelRecv := context.WithTimeout(ctx, 30*time.Second)
		got := make(chan *kilnv1.Event, 1)
		go func() {
			ev, _ := sub.Recv()
			got <- ev
		}()
		select {
		case ev := <-got:
			require.NotNil(t, ev, "since_seq %d", since)
			require.EqualValues(t, next, ev.GetSeq(), "since_seq %d", since)
		case <-recvCtx.Done():
			require.Fail(t, "no live event", "since_seq %d", since)
		}
		cancelRecv()
	}
}
