package publish

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// benchPublish publishes batches of n events with client ids (the path
// that touches the id ledger) to an embedded NATS server.
func benchPublish(b *testing.B, n int) {
	f := newFixture(b, 2*time.Minute)
	p := NewPublisher(f.js, f.ledger, nil, 10*time.Second)
	events := make([]Event, n)
	id := 0
	b.ReportAllocs()
	for b.Loop() {
		for i := range events {
			id++
			events[i] = testEvent("bench-"+strconv.Itoa(id), true)
		}
		for _, r := range p.Publish(context.Background(), events) {
			if r.Err != nil || r.Duplicate {
				b.Fatalf("publish: %+v", r)
			}
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkPublishClientIDsSingle(b *testing.B)   { benchPublish(b, 1) }
func BenchmarkPublishClientIDsBatch100(b *testing.B) { benchPublish(b, 100) }
