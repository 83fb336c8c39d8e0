package projector

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/projector/internal/consume"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// BenchmarkHistoryDrain measures how fast a running projector (all its
// projections, the consumer loop, acks) drains a backlog into the history
// on the embedded store, against one unordered InsertMany per batch of the
// same documents into a collection with the same indexes (issue 12 item 5:
// ratio ≥ 0.8). The two alternate in rounds of 2,500 events, so a busy
// machine slows both alike: in each round the history projection is held
// while the backlog is published, then released and timed until its
// consumer has nothing pending.
//
//	go test -run '^$' -bench HistoryDrain -benchtime 20000x ./projector/
func BenchmarkHistoryDrain(b *testing.B) {
	const round = 2500
	e := newEnv(b)
	e.cfg.BatchSize = 500
	e.cfg.CheckInterval = time.Second // the default, not the tests' 50ms
	ctx := context.Background()
	base := readmodel.NewHistory(e.db, readmodel.Collections{Events: "baseline"})
	require.NoError(b, base.EnsureIndexes(ctx))
	raw := e.db.Collection("baseline")

	var applies, applyTime atomic.Int64
	gate := make(chan struct{})
	close(gate)
	held := make(chan chan struct{}, 1)
	held <- gate
	e.start(b, func(name string, p consume.Projection) consume.Projection {
		if name != History {
			return p
		}
		return projectionFunc(func(ctx context.Context, evs []schemas.Event) error {
			g := <-held
			held <- g
			select {
			case <-g:
			case <-ctx.Done():
				return ctx.Err()
			}
			applies.Add(1)
			st := time.Now()
			defer func() { applyTime.Add(int64(time.Since(st))) }()
			return p.Apply(ctx, evs)
		})
	})
	cons, err := e.js.Consumer(ctx, schemas.StreamName, Durable(History))
	for err != nil {
		time.Sleep(10 * time.Millisecond)
		cons, err = e.js.Consumer(ctx, schemas.StreamName, Durable(History))
	}
	reader, err := e.js.OrderedConsumer(ctx, schemas.StreamName, jetstream.OrderedConsumerConfig{})
	require.NoError(b, err)

	var drain, insert time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i += round {
		n := min(round, b.N-i)
		closed := make(chan struct{})
		<-held
		held <- closed
		e.publishSpread(b, n, time.Hour)
		evs := fetch(b, reader, n)
		timeDrain := func() {
			s := time.Now()
			g := <-held
			open := make(chan struct{})
			close(open)
			held <- open
			close(g)
			waitDrained(b, cons)
			drain += time.Since(s)
		}
		if i/round%2 == 0 {
			timeDrain()
			insert += insertBatches(b, raw, evs, e.cfg.BatchSize)
		} else {
			insert += insertBatches(b, raw, evs, e.cfg.BatchSize)
			timeDrain()
		}
	}
	b.StopTimer()
	drainRate := float64(b.N) / drain.Seconds()
	rawRate := float64(b.N) / insert.Seconds()
	b.ReportMetric(drainRate, "drain_ev/s")
	b.ReportMetric(rawRate, "insertmany_ev/s")
	b.ReportMetric(drainRate/rawRate, "ratio")
	b.ReportMetric(float64(applies.Load()), "applies")
	b.ReportMetric(time.Duration(applyTime.Load()).Seconds(), "apply_s")
	b.ReportMetric(drain.Seconds(), "drain_s")
	b.ReportMetric(insert.Seconds(), "insert_s")
}

func fetch(b *testing.B, c jetstream.Consumer, n int) []schemas.Event {
	evs := make([]schemas.Event, 0, n)
	for len(evs) < n {
		batch, err := c.Fetch(n - len(evs))
		require.NoError(b, err)
		for m := range batch.Messages() {
			ev, _, err := schemas.DecodeMsg(m)
			require.NoError(b, err)
			evs = append(evs, ev)
		}
	}
	return evs
}

func waitDrained(b *testing.B, c jetstream.Consumer) {
	for {
		info, err := c.Info(context.Background())
		require.NoError(b, err)
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond) // polling a measurement, not syncing a test
	}
}

func insertBatches(b *testing.B, coll *mongo.Collection, evs []schemas.Event, size int) time.Duration {
	var took time.Duration
	for i := 0; i < len(evs); i += size {
		docs, err := readmodel.Docs(evs[i:min(i+size, len(evs))])
		require.NoError(b, err)
		s := time.Now()
		_, err = coll.InsertMany(context.Background(), docs, options.InsertMany().SetOrdered(false))
		took += time.Since(s)
		require.NoError(b, err)
	}
	return took
}
