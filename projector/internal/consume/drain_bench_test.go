package consume

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// BenchmarkLoopDrain measures the loop alone (pull, batch, ack) draining a
// backlog of b.N events into a projection that only counts, at batch 500
// and with storeTime per batch: the rate one process gets from its consumer
// when the store costs nothing (0) or a little (2ms).
//
//	go test -run '^$' -bench LoopDrain -benchtime 50000x ./projector/internal/consume/
func BenchmarkLoopDrain(b *testing.B) {
	for _, storeTime := range []time.Duration{0, 2 * time.Millisecond} {
		b.Run("store="+storeTime.String(), func(b *testing.B) {
			ns := testsupport.StartNATS(b)
			js := ns.JetStream(b)
			ctx := context.Background()
			stream, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
			require.NoError(b, err)
			for i := 0; i < b.N; i += 2000 { // within the async publish window
				publish(b, js, i, min(2000, b.N-i))
			}
			var applied atomic.Int64
			p := loopProjection(func(_ context.Context, evs []schemas.Event) error {
				if storeTime > 0 {
					time.Sleep(storeTime) // simulated store work
				}
				applied.Add(int64(len(evs)))
				return nil
			})
			b.ResetTimer()
			testsupport.Run(b, ctx, func(ctx context.Context) error {
				return Run(ctx, Spec{Stream: stream, Durable: "drain", Projection: p, Poison: noPoison{},
					Observe: noObserver{}, Log: testsupport.DiscardLogger(), Dependency: "none",
					BatchSize: 500, AckWait: 30 * time.Second, MaxDeliver: -1, PoisonAfter: 5})
			})
			for applied.Load() < int64(b.N) {
				time.Sleep(time.Millisecond) // polling a measurement, not syncing a test
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ev/s")
		})
	}
}
