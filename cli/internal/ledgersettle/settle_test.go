package ledgersettle

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/idledger"
	"github.com/kilnhq/kiln/testsupport"
)

// TestSettleRestored: each kind of entry a ledger snapshot taken after the
// EVENTS snapshot can hold (kiln restore), settled against the restored
// stream.
func TestSettleRestored(t *testing.T) {
	ctx := context.Background()
	js := testsupport.StartNATS(t).JetStream(t)
	events, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{Replicas: 1, DuplicateWindow: time.Minute})
	require.NoError(t, err)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: idledger.Bucket, History: 1})
	require.NoError(t, err)

	for i := range 3 {
		_, err := js.Publish(ctx, "events.a", []byte(`{}`), jetstream.WithMsgID("old-"+strconv.Itoa(i)))
		require.NoError(t, err)
	}
	_, err = js.Publish(ctx, "events.a", []byte(`{}`), jetstream.WithMsgID("in-doubt")) // seq 4
	require.NoError(t, err)
	pending := []byte("p" + strconv.FormatInt(time.Now().Add(-time.Minute).UnixMilli(), 10))
	put := func(id string, v []byte) {
		_, err := kv.Put(ctx, idledger.Key(id), v)
		require.NoError(t, err)
	}
	put("old-1", []byte("2"))        // settled, in the stream: kept
	put("in-doubt", pending)         // pending, its event in the stream: settled to 4
	put("never-appended", pending)   // pending, no event: removed
	put("after-backup", []byte("9")) // settled past the stream's end: removed

	events, err = js.Stream(ctx, schemas.StreamName) // fresh state: last seq 4
	require.NoError(t, err)
	rep, err := Settle(ctx, js, events, Options{Log: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	// old-0 and old-2 have no entry and get none: the ledger is ahead.
	require.Equal(t, Report{Entries: 4, Settled: 1, DroppedPending: 1, DroppedLater: 1, Scanned: 4, ScannedFrom: 1}, rep)

	get := func(id string) string {
		e, err := kv.Get(ctx, idledger.Key(id))
		if err != nil {
			return err.Error()
		}
		return string(e.Value())
	}
	require.Equal(t, "2", get("old-1"))
	require.Equal(t, "4", get("in-doubt"))
	for _, id := range []string{"never-appended", "after-backup"} {
		require.Equal(t, jetstream.ErrKeyNotFound.Error(), get(id))
		// What ingest's reservation does: a create where the subject holds
		// nothing at all (no delete marker either).
		msg := nats.NewMsg(idledger.SubjectPrefix + idledger.Key(id))
		msg.Data = pending
		_, err := js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(0))
		require.NoError(t, err, "%s can be reserved again", id)
	}
}

// TestSettlePromoted: each way the mirrored ledger and EVENTS can disagree
// at the cut (kiln mirror promote), and what settling makes of it.
func TestSettlePromoted(t *testing.T) {
	ctx := context.Background()
	js := testsupport.StartNATS(t).JetStream(t)
	events, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
	require.NoError(t, err)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: idledger.Bucket, History: 1})
	require.NoError(t, err)

	put := func(id string, v []byte) {
		_, err := kv.Put(ctx, idledger.Key(id), v)
		require.NoError(t, err)
	}
	put("settled", idledger.SeqValue(1))                              // its event is seq 1: kept
	put("pending", idledger.PendingValue(time.Now()))                 // its event is seq 2: settled
	put("later", idledger.SeqValue(10))                               // its event was not mirrored: removed
	put("gone", idledger.PendingValue(time.Now()))                    // no event: removed
	for _, id := range []string{"settled", "pending", "unrecorded"} { // "unrecorded": added
		m := nats.NewMsg(schemas.Subject("page_view"))
		m.Header.Set(schemas.HeaderMsgID, id)
		m.Data = []byte(`{}`)
		_, err := js.PublishMsg(ctx, m)
		require.NoError(t, err)
	}

	rep, err := Settle(ctx, js, events, Options{AddUnrecorded: true})
	require.NoError(t, err)
	require.Equal(t, Report{Entries: 4, Settled: 1, DroppedPending: 1, DroppedLater: 1, Added: 1, Scanned: 3, ScannedFrom: 1}, rep)
	for id, want := range map[string]string{"settled": "1", "pending": "2", "unrecorded": "3"} {
		e, err := kv.Get(ctx, idledger.Key(id))
		require.NoError(t, err, id)
		require.Equal(t, want, string(e.Value()), id)
	}
	for _, id := range []string{"later", "gone"} {
		_, err := kv.Get(ctx, idledger.Key(id))
		require.ErrorIs(t, err, jetstream.ErrKeyNotFound, id)
		_, err = kv.Create(ctx, idledger.Key(id), idledger.PendingValue(time.Now()))
		require.NoError(t, err, "%s can be reserved again", id)
	}
}
