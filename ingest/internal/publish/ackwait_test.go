package publish

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// lostAcks is a JetStream connection that stores the events whose ids it
// names but loses their acks: their futures never resolve, as when the
// ack is dropped on the way back.
type lostAcks struct {
	jetstream.JetStream
	lost map[string]bool
}

func (l *lostAcks) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f, err := l.JetStream.PublishMsgAsync(m, opts...)
	if err != nil || !l.lost[m.Header.Get("Nats-Msg-Id")] {
		return f, err
	}
	return silentFuture{m}, nil
}

// silentFuture never resolves.
type silentFuture struct{ m *nats.Msg }

func (silentFuture) Ok() <-chan *jetstream.PubAck { return nil }
func (silentFuture) Err() <-chan error            { return nil }
func (f silentFuture) Msg() *nats.Msg             { return f.m }

// One deadline serves a whole call: an event whose ack never comes is
// answered ErrUnavailable and handed to the resolver, which records it
// (it was stored), while the acks of the events around it, including one
// waited for after the deadline passed, are taken. Server-assigned ids,
// as a single POST sends, arm no ledger step.
func TestLostAckTimesOutAloneAndIsResolved(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Minute)
	r, o := f.runResolver(t, time.Minute)
	js := &lostAcks{JetStream: f.js, lost: map[string]bool{"01LOSTACK": true}}
	p := NewPublisher(js, f.ledger, r, 500*time.Millisecond)
	events := []Event{testEvent("01ACKEDBEFORE", false), testEvent("01LOSTACK", false), testEvent("01ACKEDAFTER", false)}
	res := p.Publish(context.Background(), events)

	require.NoError(t, res[0].Err)
	require.ErrorIs(t, res[1].Err, ErrUnavailable)
	require.ErrorContains(t, res[1].Err, "01LOSTACK")
	require.NoError(t, res[2].Err, "an ack that arrived is taken after the deadline passed")
	require.NotZero(t, res[0].Seq)
	require.Greater(t, res[2].Seq, res[0].Seq)

	require.Eventually(t, func() bool { return o.get("resolved") == 1 }, 3*time.Minute, 20*time.Millisecond)
	seq, ok := f.ledgerSeq(t, "01LOSTACK")
	require.True(t, ok, "the in-doubt id is recorded")
	require.Greater(t, seq, res[0].Seq, "the stored copy's sequence, between its neighbours")
	require.Less(t, seq, res[2].Seq)
	require.EqualValues(t, 3, f.msgs(t), "stored once: the resolver's republish was a duplicate")
	for _, id := range []string{"01ACKEDBEFORE", "01ACKEDAFTER"} {
		_, ok := f.ledgerSeq(t, id)
		require.False(t, ok, "server-assigned id %s acked in time is not in the ledger", id)
	}
}
