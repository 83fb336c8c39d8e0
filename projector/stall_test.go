package projector

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// publishSpread appends n events whose timestamps are spread over span,
// the shape of issue 12's burst (many events, many minutes).
func (e *testEnv) publishSpread(t testing.TB, n int, span time.Duration) {
	t.Helper()
	start := time.Now().Add(-span).UnixMilli()
	step := span.Milliseconds() / int64(n)
	futures := make([]jetstream.PubAckFuture, 0, n)
	for i := range n {
		e.seq++
		ev := schemas.Event{
			ID: fmt.Sprintf("ev-%06d", e.seq), EventType: eventTypes[e.seq%len(eventTypes)],
			UserID: fmt.Sprintf("u%d", e.seq%7), Timestamp: start + int64(i)*step, ReceivedAt: start,
			Metadata: json.RawMessage(`{"n":1}`),
		}
		data, err := json.Marshal(ev)
		require.NoError(t, err)
		msg := nats.NewMsg(schemas.Subject(ev.EventType))
		msg.Data = data
		msg.Header.Set(schemas.HeaderMsgID, ev.ID)
		f, err := e.js.PublishMsgAsync(msg)
		require.NoError(t, err)
		futures = append(futures, f)
		e.sent[ev.EventType]++
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			require.NoError(t, err)
		}
	}
}

// Issue 12's burst: thousands of events over hours of timestamps, taken in
// batches of 500, twice over the same minutes. The history checkpoint must
// reach the stream's last sequence.
func TestHistoryBurstOverManyMinutesReachesTheLastSequence(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.cfg.BatchSize = 500
	e.publishSpread(t, 3000, 6*time.Hour)
	e.publishSpread(t, 3000, 6*time.Hour)
	e.start(t, nil)

	ledger := readmodel.NewLedger(e.db)
	last := uint64(e.total())
	require.Eventually(t, func() bool {
		cp, err := ledger.Checkpoint(context.Background(), History)
		return err == nil && cp == last
	}, 3*time.Minute, 100*time.Millisecond, "history checkpoint never reached %d", last)
	n, err := readmodel.NewHistory(e.db, readmodel.DefaultCollections()).Count(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, last, n)
}
