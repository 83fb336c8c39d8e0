package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// env is one set of real servers: NATS with the EVENTS stream, FerretDB,
// redis-server.
type env struct {
	deps Deps
	sent map[string]int64 // events published, by type
	seq  int
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	_, err := schemas.EnsureStream(context.Background(), js, schemas.StreamOptions{})
	require.NoError(t, err)
	return &env{
		deps: Deps{JetStream: js, Mongo: testsupport.StartMongo(t).Database(t),
			Redis: testsupport.StartRedis(t).Client(t), Log: testsupport.Logger(t)},
		sent: map[string]int64{},
	}
}

var eventTypes = []string{"page_view", "signup", "order.created", "payment.failed"}

// publish appends n events to the stream, stamped over the last hour out of
// order (as clients' clocks and batching send them), and waits for the acks.
func (e *env) publish(t testing.TB, n int) {
	t.Helper()
	js, err := jetstream.New(e.deps.JetStream.Conn(), jetstream.WithPublishAsyncMaxPending(4096))
	require.NoError(t, err)
	now := time.Now().UnixMilli()
	for range n {
		e.seq++
		ts := now - int64(e.seq*7919%3_600_000)
		ev := schemas.Event{
			ID: fmt.Sprintf("ev-%07d", e.seq), EventType: eventTypes[e.seq%len(eventTypes)],
			UserID: fmt.Sprintf("u%d", e.seq%50), Timestamp: ts, ReceivedAt: now,
			Metadata: json.RawMessage(`{"path":"/products/7","durationMs":1042}`),
		}
		data, err := json.Marshal(ev)
		require.NoError(t, err)
		msg := nats.NewMsg(schemas.Subject(ev.EventType))
		msg.Data = data
		msg.Header.Set(schemas.HeaderMsgID, ev.ID)
		_, err = js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute))
		require.NoError(t, err)
		e.sent[ev.EventType]++
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		t.Fatal("publish did not complete")
	}
}

func (e *env) total() int64 {
	var n int64
	for _, c := range e.sent {
		n += c
	}
	return n
}
