package readmodel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// BenchmarkSnapshot measures where a GET /metrics snapshot's time goes:
// the Redis pipeline of 122 reads and their decoding (Snapshot), and the
// JSON encoding, over an hour of counters for ten event types.
func BenchmarkSnapshot(b *testing.B) {
	ctx := context.Background()
	rdb := testsupport.StartRedis(b).Client(b)
	c := readmodel.NewCounters(rdb, readmodel.CountersOptions{})
	now := time.Now()
	var evs []schemas.Event
	for i := range 36_000 {
		evs = append(evs, schemas.Event{ID: fmt.Sprint(i), EventType: fmt.Sprintf("type.%d", i%10), UserID: "u",
			Timestamp: now.Add(-time.Duration(i) * 100 * time.Millisecond).UnixMilli(), Seq: uint64(i + 1)})
	}
	for i := 0; i < len(evs); i += 1000 {
		if _, err := c.Apply(ctx, evs[i:i+1000], now); err != nil {
			b.Fatal(err)
		}
	}
	m, err := c.Snapshot(ctx, now)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("snapshot", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Snapshot(ctx, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
