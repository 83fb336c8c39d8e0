package publish

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/idledger"
	"github.com/kilnhq/kiln/testsupport"
)

// Regression tests for issue 13 item 3: ingest answering wrongly near its
// timeout and the id ledger dropping errors.

type fixture struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	ledger *Ledger
}

func newFixture(t testing.TB, window time.Duration) *fixture {
	t.Helper()
	srv := testsupport.StartNATS(t)
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	stream, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{DuplicateWindow: window})
	require.NoError(t, err)
	ledger, err := OpenLedger(ctx, js, LedgerOptions{TTL: time.Hour})
	require.NoError(t, err)
	return &fixture{js: js, stream: stream, ledger: ledger}
}

func testEvent(id string, clientID bool) Event {
	return Event{ID: id, Subject: schemas.Subject("page_view"), UserID: "u", ClientID: clientID,
		Data: []byte(`{"id":"` + id + `","eventType":"page_view","userId":"u","timestamp":1}`)}
}

func (f *fixture) msgs(t *testing.T) uint64 {
	t.Helper()
	info, err := f.stream.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

func (f *fixture) ledgerSeq(t *testing.T, id string) (uint64, bool) {
	t.Helper()
	entry, err := f.ledger.kv.Get(context.Background(), idledger.Key(id))
	if err != nil {
		require.ErrorIs(t, err, jetstream.ErrKeyNotFound)
		return 0, false
	}
	seq, err := strconv.ParseUint(string(entry.Value()), 10, 64)
	require.NoError(t, err)
	return seq, true
}

// slowReserve is a JetStream connection whose ledger writes made before
// any append (the reservations) take most of a publish timeout, as a slow
// or overloaded KV does.
type slowReserve struct {
	jetstream.JetStream
	delay    time.Duration
	appended atomic.Bool
}

func (s *slowReserve) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if !strings.HasPrefix(m.Subject, "$KV.") {
		s.appended.Store(true)
	} else if !s.appended.Load() {
		time.Sleep(s.delay)
	}
	return s.JetStream.PublishMsgAsync(m, opts...)
}

// A slow ledger reservation must not eat the ack wait (the event would be
// stored yet answered 503) nor the settle (the id would not be recorded).
func TestSlowReservationDoesNotFailAnAckedEvent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Minute)
	const timeout = 2 * time.Second
	slow := &slowReserve{JetStream: f.js, delay: timeout * 9 / 10}
	ledger, err := OpenLedger(context.Background(), slow, LedgerOptions{TTL: time.Hour})
	require.NoError(t, err)
	p := NewPublisher(slow, ledger, nil, timeout)
	res := p.Publish(context.Background(), []Event{testEvent("slow-reserve", true)})
	require.NoError(t, res[0].Err, "the ack arrived: the event is not answered 503")
	require.NotZero(t, res[0].Seq)
	seq, ok := f.ledgerSeq(t, "slow-reserve")
	require.True(t, ok, "settle ran on a context of its own")
	require.Equal(t, res[0].Seq, seq)
}

// A ledger read error is not "unknown id": the event is not published and
// the client is told to retry (503).
func TestLedgerReadErrorIsUnavailable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Minute)
	require.NoError(t, f.js.DeleteKeyValue(context.Background(), idledger.Bucket))
	p := NewPublisher(f.js, f.ledger, nil, 2*time.Second)
	res := p.Publish(context.Background(), []Event{testEvent("kv-down", true), testEvent("server-id", false)})
	require.ErrorIs(t, res[0].Err, ErrUnavailable)
	require.NoError(t, res[1].Err, "server-assigned ids need no ledger read")
	require.EqualValues(t, 1, f.msgs(t), "the client id was not published")
}

// A late duplicate (stored after the dedupe window, found in the ledger by
// settle) is answered with the first sequence and never deleted: consumers
// may have counted it already, and deleting it would make the counters
// and a rebuild disagree.
func TestLateDuplicateAnsweredFirstSeqNotDeleted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Minute)
	ctx := context.Background()
	first, err := f.js.PublishMsg(ctx, testEvent("late", true).msg())
	require.NoError(t, err)
	_, err = f.ledger.kv.Create(ctx, idledger.Key("late"), []byte(strconv.FormatUint(first.Sequence, 10)))
	require.NoError(t, err)
	second := testEvent("late", true)
	msg := second.msg()
	msg.Header.Set(schemas.HeaderMsgID, "late-after-window") // as if the window had passed
	ack, err := f.js.PublishMsg(ctx, msg)
	require.NoError(t, err)
	results := []Result{{Seq: ack.Sequence}}
	require.NoError(t, f.ledger.settle(ctx, []Event{second}, results, claims{}))
	require.Equal(t, Result{Seq: first.Sequence, Duplicate: true}, results[0])
	require.EqualValues(t, 2, f.msgs(t), "the stored copy stays in the stream")
}

type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) add(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n[s]++
}

func (o *outcomes) get(s string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[s]
}

// runResolver runs a resolver for a stream whose dedupe window is window
// until the test ends, counting its outcomes.
func (f *fixture) runResolver(t *testing.T, window time.Duration) (*Resolver, *outcomes) {
	t.Helper()
	o := &outcomes{n: map[string]int{}}
	r := NewResolver(f.js, f.ledger, window, testsupport.Logger(t), o.add)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = r.Run(ctx) }()
	return r, o
}

// The resolver counts "resolved" only once the ledger holds the id.
func TestResolverNotResolvedWhenLedgerWriteFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2*time.Second)
	require.NoError(t, f.js.DeleteKeyValue(context.Background(), idledger.Bucket))
	r, o := f.runResolver(t, 2*time.Second)
	r.add(testEvent("no-ledger", true), time.Now())
	require.Eventually(t, func() bool { return o.get("unresolved") == 1 }, 3*time.Minute, 20*time.Millisecond)
	require.Zero(t, o.get("resolved"))
}

// Shutdown: the resolver keeps working until the publishes in flight (the
// HTTP server draining) are done, and settles what they left in doubt.
func TestResolverDrainsAfterInFlightPublishes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Minute)
	o := &outcomes{n: map[string]int{}}
	r := NewResolver(f.js, f.ledger, time.Minute, testsupport.Logger(t), o.add)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	r.begin() // a request still being answered
	go func() { done <- r.Run(ctx) }()
	cancel() // shutdown starts
	r.add(testEvent("during-shutdown", true), time.Now())
	r.end()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("resolver did not stop after the drain")
	}
	require.Equal(t, 1, o.get("resolved"))
	_, ok := f.ledgerSeq(t, "during-shutdown")
	require.True(t, ok)
}

// A server-assigned id answered 503 is named to the client for its retry,
// so an in-doubt write of one is settled into the ledger too: a retry
// after the dedupe window is then a duplicate.
func TestInDoubtServerIDIsRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Minute)
	r, o := f.runResolver(t, time.Minute)
	p := NewPublisher(f.js, f.ledger, r, time.Second)
	p.inDoubt(testEvent("01SERVERASSIGNED", false), time.Now())
	require.Eventually(t, func() bool { return o.get("resolved") == 1 }, 3*time.Minute, 20*time.Millisecond)
	seq, ok := f.ledgerSeq(t, "01SERVERASSIGNED")
	require.True(t, ok)
	retry := p.Publish(context.Background(), []Event{testEvent("01SERVERASSIGNED", true)})
	require.Equal(t, Result{Seq: seq, Duplicate: true}, retry[0])
}
