package decide

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

// stallingConsumer is a real ordered consumer whose first fetches come
// back empty, as a pull on a loaded server can.
type stallingConsumer struct {
	jetstream.Consumer
	empty int // fetches left to answer with nothing
}

type emptyBatch struct{ ch chan jetstream.Msg }

func (b emptyBatch) Messages() <-chan jetstream.Msg { return b.ch }
func (b emptyBatch) Error() error                   { return nil }

func (c *stallingConsumer) stall() (jetstream.MessageBatch, bool) {
	if c.empty == 0 {
		return nil, false
	}
	c.empty--
	ch := make(chan jetstream.Msg)
	close(ch)
	return emptyBatch{ch}, true
}

func (c *stallingConsumer) Fetch(n int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	if b, ok := c.stall(); ok {
		return b, nil
	}
	return c.Consumer.Fetch(n, opts...)
}

func (c *stallingConsumer) FetchNoWait(n int) (jetstream.MessageBatch, error) {
	if b, ok := c.stall(); ok {
		return b, nil
	}
	return c.Consumer.FetchNoWait(n)
}

// An empty fetch in the middle of a rebuild does not end it: it reads up to
// the sequence it set out to reach.
func TestRebuildReadsToItsEndPastEmptyFetches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := testsupport.StartNATS(t).JetStream(t)
	stream, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	require.NoError(t, err)
	const total = 2500 // several fetches of 1000
	now := time.Now().UnixMilli()
	for i := range total {
		ev := schemas.Event{ID: fmt.Sprintf("e%d", i), EventType: "payment.failed", UserID: "u1",
			Timestamp: now, ReceivedAt: now, Metadata: json.RawMessage(`{}`)}
		data, err := json.Marshal(ev)
		require.NoError(t, err)
		msg := nats.NewMsg(schemas.Subject(ev.EventType))
		msg.Data = data
		_, err = js.PublishMsgAsync(msg)
		require.NoError(t, err)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		t.Fatal("publishing never completed")
	}
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, total, info.State.LastSeq)

	for _, stalls := range []int{1, 3} {
		oc, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{schemas.SubjectAll}})
		require.NoError(t, err)
		seen := map[string]bool{}
		n, err := readUpTo(ctx, &stallingConsumer{Consumer: oc, empty: stalls}, info.State.LastSeq,
			func(ev *schemas.Event) { seen[ev.ID] = true })
		require.NoError(t, err)
		require.Equal(t, total, n, "stalls=%d", stalls)
		require.Len(t, seen, total)
	}
}
