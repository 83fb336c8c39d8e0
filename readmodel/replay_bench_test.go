package readmodel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// BenchmarkReplayWrites measures a full replay's Redis writes alone, without
// the stream: 50,000 events stamped over the last hour out of order (as
// projector/replay's benchmark publishes them) counted in batches of 1,000,
// and the same events built into the recent-events cache in memory and
// written. It reports events/s and the CPU per event of this process and of
// redis-server; each iteration writes into new keys.
//
//	go test -run '^$' -bench ReplayWrites -benchtime 5x ./readmodel/
func BenchmarkReplayWrites(b *testing.B) {
	const events = 50_000
	ctx := context.Background()
	rdb := testsupport.StartRedis(b).Client(b)
	now := time.Now()
	evs := make([]schemas.Event, events)
	types := []string{"page_view", "signup", "order.created", "payment.failed"}
	for i := range evs {
		seq := i + 1
		evs[i] = schemas.Event{ID: fmt.Sprintf("ev-%07d", seq), EventType: types[seq%len(types)],
			UserID: fmt.Sprintf("u%d", seq%50), Timestamp: now.UnixMilli() - int64(seq*7919%3_600_000),
			ReceivedAt: now.UnixMilli(), Metadata: json.RawMessage(`{"path":"/products/7","durationMs":1042}`), Seq: uint64(seq)}
	}
	gen := 0
	measure := func(b *testing.B, write func(prefix string)) {
		self0, redis0 := testsupport.ProcessCPU(b), testsupport.RedisCPU(b, rdb)
		start := time.Now()
		for range b.N {
			gen++
			write(readmodel.PrefixFor(int64(1000 + gen)))
		}
		n := float64(events * b.N)
		b.ReportMetric(n/time.Since(start).Seconds(), "ev/s")
		b.ReportMetric(float64((testsupport.ProcessCPU(b)-self0).Microseconds())/n, "cpu-µs/ev")
		b.ReportMetric(float64((testsupport.RedisCPU(b, rdb)-redis0).Microseconds())/n, "redis-cpu-µs/ev")
	}
	b.Run("counters", func(b *testing.B) {
		measure(b, func(prefix string) {
			c := readmodel.NewCounters(rdb, readmodel.CountersOptions{Prefix: prefix})
			for i := 0; i < len(evs); i += 1000 {
				_, err := c.Apply(ctx, evs[i:i+1000], now)
				require.NoError(b, err)
			}
		})
	})
	b.Run("recent", func(b *testing.B) {
		measure(b, func(prefix string) {
			build := readmodel.NewRecent(rdb, readmodel.RecentOptions{Prefix: prefix}).NewBuild()
			for i := 0; i < len(evs); i += 1000 {
				require.NoError(b, build.Add(evs[i:i+1000]))
			}
			require.NoError(b, build.Write(ctx))
		})
	})
}
