package webhooks_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/webhooks/delivery"
)

// TestOneFailingBatchLosesNoEvent queues jobs into a WEBHOOKS stream that
// takes at most 4 KiB per message, in a burst with later batches that
// succeed: an event whose job fits only if its body is not HTML-escaped,
// and one whose job can never fit. Every other event reaches every
// endpoint, the escaped one too, and the one too large is a dead delivery
// with the reason.
func TestOneFailingBatchLosesNoEvent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a, b := newReceiver(t), newReceiver(t)
	epA, epB := h.createEndpoint(a.URL), h.createEndpoint(b.URL, "order.*")
	a.trust(epA.Secret)
	b.trust(epB.Secret)

	st, err := h.js.Stream(t.Context(), delivery.Stream)
	require.NoError(t, err)
	cfg := st.CachedInfo().Config
	cfg.MaxMsgSize = 4096
	_, err = h.js.UpdateStream(t.Context(), cfg)
	require.NoError(t, err)

	const small = 60
	var msgs []*nats.Msg
	for range small {
		msgs = append(msgs, h.event("order.created", `"n":1`))
	}
	// ~1.5 KB as stored; json.Marshal would make each '<' 6 bytes.
	msgs = append(msgs, h.event("order.created", `"html":"`+strings.Repeat("<", 700)+`"`))
	for range small {
		msgs = append(msgs, h.event("order.created", `"n":2`))
	}
	huge := h.event("order.created", `"blob":"`+strings.Repeat("x", 5000)+`"`)
	msgs = append(msgs, huge)
	for range small {
		msgs = append(msgs, h.event("order.created", `"n":3`))
	}
	for _, m := range msgs {
		_, err := h.js.PublishMsgAsync(m)
		require.NoError(t, err)
	}
	select {
	case <-h.js.PublishAsyncComplete():
	case <-t.Context().Done():
	}

	want := len(msgs) - 1
	require.Eventually(t, func() bool { return len(a.accepted()) == want && len(b.accepted()) == want }, wait, tick,
		"every event that fits reaches both endpoints")
	for _, ep := range []endpointView{epA, epB} {
		var dead []deliveryView
		require.Eventually(t, func() bool { dead = h.deliveries(ep.ID, "dead"); return len(dead) == 1 }, wait, tick)
		require.Equal(t, delivery.WebhookID(huge.Header.Get(schemas.HeaderMsgID), ep.ID), dead[0].ID)
		require.Contains(t, dead[0].Reason, "over the WEBHOOKS stream's message limit")
	}
	for _, rc := range []*receiver{a, b} {
		for _, g := range rc.all() {
			require.True(t, g.Valid, "signature of %s verifies", g.ID)
			require.Equal(t, http.StatusOK, g.Status)
		}
	}
}

// event is a stored event as ingest writes it, with metadata {meta}.
func (h *harness) event(typ, meta string) *nats.Msg {
	h.seq++
	id := fmt.Sprintf("%s-ev-%d", strings.ReplaceAll(h.t.Name(), "/", "-"), h.seq)
	body := fmt.Sprintf(`{"id":%q,"eventType":%q,"userId":"u","timestamp":1764619200000,"metadata":{%s},"receivedAt":1764619200001}`, id, typ, meta)
	return &nats.Msg{Subject: schemas.Subject(typ), Data: []byte(body), Header: nats.Header{schemas.HeaderMsgID: {id}}}
}

// TestUpgradeFromTheLegacyConsumers: a deployment that ran the AckAll
// fan-out consumer and the delivery consumer that parked retries moves to
// the new ones without losing the events published meanwhile.
func TestUpgradeFromTheLegacyConsumers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	rc := newReceiver(t)
	ep := h.createEndpoint(rc.URL)
	rc.trust(ep.Secret)
	h.stop()

	ctx := t.Context()
	require.NoError(t, h.js.DeleteConsumer(ctx, schemas.StreamName, delivery.FanoutDurable))
	require.NoError(t, h.js.DeleteConsumer(ctx, delivery.Stream, delivery.WorkerDurable))
	_, err := h.js.CreateConsumer(ctx, schemas.StreamName, jetstream.ConsumerConfig{
		Durable: "webhooks-fanout", AckPolicy: jetstream.AckAllPolicy, DeliverPolicy: jetstream.DeliverNewPolicy,
		FilterSubject: schemas.SubjectAll,
	})
	require.NoError(t, err)
	_, err = h.js.CreateConsumer(ctx, delivery.Stream, jetstream.ConsumerConfig{
		Durable: "webhooks-deliver", AckPolicy: jetstream.AckExplicitPolicy,
	})
	require.NoError(t, err)
	for range 5 {
		h.publish("order.created")
	}
	h.start()
	h.publish("order.created")
	require.Eventually(t, func() bool { return len(rc.accepted()) == 6 }, wait, tick)
	for _, c := range []struct{ stream, name string }{{schemas.StreamName, "webhooks-fanout"}, {delivery.Stream, "webhooks-deliver"}} {
		_, err := h.js.Consumer(ctx, c.stream, c.name)
		require.ErrorIs(t, err, jetstream.ErrConsumerNotFound, "legacy consumer %s deleted", c.name)
	}
}
