package publish

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

func TestResolverSettlesInDoubtWrites(t *testing.T) {
	t.Parallel()
	srv := testsupport.StartNATS(t)
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	stream, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{DuplicateWindow: 2 * time.Second})
	require.NoError(t, err)
	ledger, err := OpenLedger(ctx, js, LedgerOptions{TTL: time.Hour})
	require.NoError(t, err)

	var mu sync.Mutex
	outcomes := map[string]int{}
	r := NewResolver(js, ledger, 2*time.Second, testsupport.Logger(t), func(o string) {
		mu.Lock()
		defer mu.Unlock()
		outcomes[o]++
	})
	rctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go func() { _ = r.Run(rctx) }()

	event := func(id string) Event {
		return Event{ID: id, Subject: schemas.Subject("page_view"), UserID: "u", ClientID: true,
			Data: []byte(`{"id":"` + id + `","eventType":"page_view","userId":"u","timestamp":1}`)}
	}
	// landed: the first attempt was stored, only its ack was lost.
	landed := event("landed")
	first, err := js.PublishMsg(ctx, landed.msg())
	require.NoError(t, err)
	r.add(landed, time.Now())
	// lost: the first attempt never reached the stream.
	r.add(event("lost"), time.Now())
	// stale: in doubt for longer than the window; republishing could store
	// it twice, so the resolver gives up on it.
	r.add(event("stale"), time.Now().Add(-time.Minute))

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return outcomes["resolved"] == 2 && outcomes["unresolved"] == 1
	}, 10*time.Second, 20*time.Millisecond)

	seqOf := func(id string) uint64 {
		entry, err := ledger.kv.Get(ctx, ledgerKey(id))
		require.NoError(t, err, id)
		seq, err := strconv.ParseUint(string(entry.Value()), 10, 64)
		require.NoError(t, err)
		return seq
	}
	require.Equal(t, first.Sequence, seqOf("landed"), "the ledger points at the write that landed")
	require.NotZero(t, seqOf("lost"))
	_, err = ledger.kv.Get(ctx, ledgerKey("stale"))
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound)

	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, info.State.Msgs, "landed once, lost stored once, stale not republished")
}
