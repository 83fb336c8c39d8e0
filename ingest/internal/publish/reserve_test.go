package publish

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas/idledger"
)

// stallAfterAppend is a JetStream connection whose ledger writes made after
// an event append wait until release is closed: a writer stalled between
// its append and its ledger record (a slow KV, a GC pause, a stuck node).
type stallAfterAppend struct {
	jetstream.JetStream
	release  chan struct{}
	mu       sync.Mutex
	appended bool
	stalled  chan struct{} // closed when a ledger write starts waiting
	once     sync.Once
}

func (s *stallAfterAppend) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	s.mu.Lock()
	kv := strings.HasPrefix(m.Subject, "$KV.")
	if !kv {
		s.appended = true
	}
	wait := kv && s.appended
	s.mu.Unlock()
	if wait {
		s.once.Do(func() { close(s.stalled) })
		<-s.release
	}
	return s.JetStream.PublishMsgAsync(m, opts...)
}

// Two writers of one client id, the first stalled between its append and
// its ledger record for longer than the dedupe window: the second must not
// append the id again (the Redis counters, deduplicated by stream sequence,
// would count it twice). It is told to retry while the first is in doubt,
// and gets duplicate:true with the first sequence once the first settled.
func TestSecondWriterOfAnIDNeverAppendsIt(t *testing.T) {
	t.Parallel()
	const window = time.Second
	f := newFixture(t, window)
	ctx := context.Background()
	stall := &stallAfterAppend{JetStream: f.js, release: make(chan struct{}), stalled: make(chan struct{})}
	slowLedger, err := OpenLedger(ctx, stall, LedgerOptions{TTL: time.Hour})
	require.NoError(t, err)
	first := NewPublisher(stall, slowLedger, nil, time.Minute)
	// The first writer is in doubt, not dead, for as long as this test needs.
	ledger, err := OpenLedger(ctx, f.js, LedgerOptions{TTL: time.Hour, StaleAfter: time.Hour})
	require.NoError(t, err)
	second := NewPublisher(f.js, ledger, nil, time.Minute)

	done := make(chan Result, 1)
	go func() { done <- first.Publish(ctx, []Event{testEvent("raced", true)})[0] }()
	select {
	case <-stall.stalled:
	case <-time.After(time.Minute):
		t.Fatal("the first writer never reached its ledger record")
	}
	require.EqualValues(t, 1, f.msgs(t), "the first writer appended")
	time.Sleep(2 * window) // the stream's dedupe window of the first append passes

	r := second.Publish(ctx, []Event{testEvent("raced", true)})[0]
	require.EqualValues(t, 1, f.msgs(t), "the second writer appended the id again: %+v", r)
	require.ErrorIs(t, r.Err, ErrUnavailable, "in doubt while the first writer has not settled")

	close(stall.release)
	var r1 Result
	select {
	case r1 = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the first writer did not finish")
	}
	require.NoError(t, r1.Err)
	retry := second.Publish(ctx, []Event{testEvent("raced", true)})[0]
	require.Equal(t, Result{Seq: r1.Seq, Duplicate: true}, retry)
	require.EqualValues(t, 1, f.msgs(t))
}

// A reservation found pending is joined while the dedupe window covers the
// first writer's append, refused (503) while that writer may still settle
// it, and taken over once it cannot (it died): each ends with the id
// appended at most once and recorded.
func TestPendingReservationByAge(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Minute)
	ctx := context.Background()
	p := NewPublisher(f.js, f.ledger, nil, 10*time.Second)
	for _, tc := range []struct {
		id    string
		age   time.Duration
		doubt bool
	}{
		{"fresh", time.Second, false},
		{"in-doubt", time.Minute, true},
		{"stale", 3 * time.Minute, false},
	} {
		_, err := f.ledger.kv.Create(ctx, idledger.Key(tc.id), idledger.PendingValue(time.Now().Add(-tc.age)))
		require.NoError(t, err)
		before := f.msgs(t)
		r := p.Publish(ctx, []Event{testEvent(tc.id, true)})[0]
		if tc.doubt {
			require.ErrorIs(t, r.Err, ErrInDoubt, tc.id)
			require.Equal(t, before, f.msgs(t), tc.id)
			continue
		}
		require.NoError(t, r.Err, tc.id)
		require.Equal(t, before+1, f.msgs(t), tc.id)
		seq, ok := f.ledgerSeq(t, tc.id)
		require.True(t, ok, tc.id)
		require.Equal(t, r.Seq, seq, tc.id)
	}
}

// A batch retried whole (a client that did not read its 202) finds every
// client id in the ledger: its entries are read by batched direct gets, a
// request per 1,024 ids, not a request per id. The former per-id reads (32
// at a time) took most of a retried 1,000-event batch's deadline under
// load and answered it 503 again and again.
func TestRetriedBatchReadsTheLedgerInFewRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Minute)
	ctx := context.Background()
	p := NewPublisher(f.js, f.ledger, nil, time.Minute)
	const n = 1500
	events := make([]Event, n)
	for i := range events {
		events[i] = testEvent(fmt.Sprintf("retried-%d", i), true)
	}
	first := p.Publish(ctx, events)
	for i, r := range first {
		require.NoError(t, r.Err, "event %d", i)
		require.False(t, r.Duplicate)
	}

	watch, err := nats.Connect(f.js.Conn().ConnectedUrl())
	require.NoError(t, err)
	t.Cleanup(watch.Close)
	reads, err := watch.SubscribeSync("$JS.API.DIRECT.GET.KV_" + idledger.Bucket + ".>")
	require.NoError(t, err)
	batched, err := watch.SubscribeSync("$JS.API.DIRECT.GET.KV_" + idledger.Bucket)
	require.NoError(t, err)
	require.NoError(t, watch.Flush())

	again := p.Publish(ctx, append(events, testEvent("retried-new", true)))
	for i, r := range again[:n] {
		require.Equal(t, Result{Seq: first[i].Seq, Duplicate: true}, r, "event %d", i)
	}
	require.NoError(t, again[n].Err)
	require.False(t, again[n].Duplicate)
	require.EqualValues(t, n+1, f.msgs(t))

	require.NoError(t, watch.Flush()) // every request sent before the answers is delivered by now
	perID, _, err := reads.Pending()
	require.NoError(t, err)
	together, _, err := batched.Pending()
	require.NoError(t, err)
	require.Zero(t, perID, "ledger entries read one id a request")
	require.Equal(t, 2, together, "batched ledger reads for %d ids (1,024 a request)", n)

	// Servers before 2.11 have no batched gets: the same entries, an id a request.
	ids := []string{"retried-0", "retried-1499", "retried-new", "never-sent"}
	many, err := f.ledger.readMany(ctx, ids)
	require.NoError(t, err)
	each, err := f.ledger.readEach(ctx, ids)
	require.NoError(t, err)
	require.Len(t, many, 3)
	require.Equal(t, many, each)
}

// silentBatches sends the ledger's batched reads to a subject whose
// responder never answers, as an overloaded server answers too late.
type silentBatches struct {
	jetstream.JetStream
	prefix string
}

func (s silentBatches) Options() jetstream.JetStreamOptions {
	o := s.JetStream.Options()
	o.APIPrefix = s.prefix
	return o
}

// A batched ledger read ends silently at its deadline (natsext.RequestMany
// returns what came, without an error): on a loaded machine a retried
// batch of known ids was told "key not found" for every id. A read cut
// short is an error, never an absence.
func TestBatchedLedgerReadCutShortIsAnError(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Minute)
	ctx := context.Background()
	ids := []string{"cut-0", "cut-1", "cut-2"}
	var events []Event
	for _, id := range ids {
		events = append(events, testEvent(id, true))
	}
	for i, r := range NewPublisher(f.js, f.ledger, nil, time.Minute).Publish(ctx, events) {
		require.NoError(t, r.Err, "event %d", i)
	}
	silent, err := f.js.Conn().SubscribeSync("$SILENT.API.DIRECT.GET.>") // never answers
	require.NoError(t, err)
	t.Cleanup(func() { _ = silent.Unsubscribe() })
	f.ledger.js = silentBatches{JetStream: f.js, prefix: "$SILENT.API."}

	rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	entries, err := f.ledger.readMany(rctx, ids)
	require.ErrorIs(t, err, context.DeadlineExceeded, "read %d of %d entries", len(entries), len(ids))
}
