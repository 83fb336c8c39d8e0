package baseline

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

func TestSettleWaitsForDurableConsumers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	stream, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	durable, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "projection", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	// An ephemeral watcher that never reads must not hold Settle up.
	if _, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{}); err != nil {
		t.Fatal(err)
	}
	p, err := connect(t, ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	log := testsupport.Logger(t)
	if n, err := p.Backlog(ctx); n != 0 || err != nil || !p.Settle(ctx, time.Second, log) {
		t.Fatalf("empty stream: backlog %d, %v", n, err)
	}
	if _, err := p.Window(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Backlog(ctx); n != 10 || err != nil {
		t.Fatalf("backlog = %d, %v; want 10", n, err)
	}
	if p.Settle(ctx, 300*time.Millisecond, log) {
		t.Fatal("Settle returned true with 10 messages unread")
	}

	// The projection reads half and the rest is purged: caught up.
	batch, err := durable.Fetch(5)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.PurgeSubject(ctx, subject); err != nil {
		t.Fatal(err)
	}
	if !p.Settle(ctx, 5*time.Second, log) {
		n, _ := p.Backlog(ctx)
		t.Fatalf("not settled after the purge: backlog %d", n)
	}
}
