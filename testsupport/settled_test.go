package testsupport

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

func TestConsumerSettled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js := StartNATS(t).JetStream(t)
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	require.NoError(t, err)
	c, err := js.CreateConsumer(ctx, "S", jetstream.ConsumerConfig{
		Durable: "d", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "s.mine.>",
	})
	require.NoError(t, err)
	settled := func() bool {
		ok, err := ConsumerSettled(ctx, js, "S", "d")
		require.NoError(t, err)
		return ok
	}

	require.True(t, settled(), "nothing stored yet")
	_, err = js.Publish(ctx, "s.mine.a", nil)
	require.NoError(t, err)
	require.False(t, settled(), "stored, never delivered")

	batch, err := c.Fetch(1, jetstream.FetchMaxWait(time.Minute))
	require.NoError(t, err)
	m := <-batch.Messages()
	require.NotNil(t, m)
	require.False(t, settled(), "delivered, not acked")
	require.NoError(t, m.DoubleAck(ctx))
	require.True(t, settled(), "delivered and acked")

	_, err = js.Publish(ctx, "s.other", nil)
	require.NoError(t, err)
	require.True(t, settled(), "a message outside the filter is not the consumer's")
}
