package rejections_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas/rejections"
	"github.com/kilnhq/kiln/testsupport"
)

// A record is written within the server's max_payload: a refused body
// that does not fit is cut, Truncated with the size sent, and marked not
// recoverable; a quarantined one is never cut (ErrRecordTooLarge). A
// malformed body's record is not recoverable either.
func TestRecordFitsTheMessageSize(t *testing.T) {
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	ctx := context.Background()
	_, err := rejections.Ensure(ctx, js, rejections.Options{}, 1)
	require.NoError(t, err)
	nc := ns.Connect(t)
	limit := int(nc.MaxPayload())

	huge := append([]byte("{"), bytes.Repeat([]byte("x"), limit)...) // not JSON either
	rec := rejections.Malformed(huge, "malformed JSON: invalid character 'x'")
	rec.KeyID, rec.Time = rejections.KeyID("k"), time.Now().UTC()
	require.False(t, rec.CanRecover())
	_, err = rec.Msg()
	require.NoError(t, err, "no bound: whole")
	m, err := rec.MsgWithin(limit)
	require.NoError(t, err)
	require.Equal(t, rejections.SubjectUntyped, m.Subject)
	ack, err := js.PublishMsg(ctx, m)
	require.NoError(t, err, "fits the server's max_payload")
	got, err := js.Stream(ctx, rejections.StreamName)
	require.NoError(t, err)
	raw, err := got.GetMsg(ctx, ack.Sequence)
	require.NoError(t, err)
	dec, err := rejections.Decode(raw.Sequence, raw.Header, raw.Data)
	require.NoError(t, err)
	require.True(t, dec.Truncated)
	require.Equal(t, len(huge), dec.BodyBytes)
	require.False(t, dec.CanRecover())
	require.Equal(t, "", dec.EventType)
	require.Equal(t, rejections.Rejected, dec.Outcome)
	require.True(t, bytes.HasPrefix(huge, dec.Body))
	require.Greater(t, len(dec.Body), limit-4096, "as much of the body as fits")
	require.Contains(t, raw.Header.Get(rejections.Header), `"recoverable":false`)

	// A refused event that fits is whole and recoverable (no field).
	small := &rejections.Record{EventType: "page_view", Outcome: rejections.Rejected, Body: []byte(`{"eventType":"page_view"}`)}
	m, err = small.MsgWithin(limit)
	require.NoError(t, err)
	require.Equal(t, small.Body, m.Data)
	require.NotContains(t, m.Header.Get(rejections.Header), "recoverable")
	require.NotContains(t, m.Header.Get(rejections.Header), "truncated")
	require.True(t, small.CanRecover())

	// A refused event too large: cut, and no longer recoverable.
	big := &rejections.Record{EventType: "page_view", Outcome: rejections.Rejected,
		Body: []byte(`{"eventType":"page_view","metadata":{"s":"` + strings.Repeat("y", limit) + `"}}`)}
	m, err = big.MsgWithin(limit)
	require.NoError(t, err)
	require.Less(t, len(m.Data), len(big.Body))
	dec, err = rejections.Decode(0, m.Header, m.Data)
	require.NoError(t, err)
	require.True(t, dec.Truncated)
	require.False(t, dec.CanRecover())
	require.True(t, big.CanRecover(), "the caller's record is not changed")

	big.Outcome = rejections.Quarantined
	_, err = big.MsgWithin(limit)
	require.ErrorIs(t, err, rejections.ErrRecordTooLarge)
}
