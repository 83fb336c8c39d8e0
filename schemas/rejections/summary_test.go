package rejections_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/rejections"
	"github.com/kilnhq/kiln/testsupport"
)

// Summarize counts the window's records per type and field (an event once
// per field), lists the top fields with the newest example, and reads at
// most Max records: the newest.
func TestSummarizeCountsByTypeAndField(t *testing.T) {
	js := testsupport.StartNATS(t).JetStream(t)
	ctx := context.Background()
	now := time.Now().UTC()

	empty, err := rejections.Summarize(ctx, js, rejections.SummaryQuery{Since: now.Add(-time.Hour)})
	require.NoError(t, err, "before ingest made the stream")
	require.Zero(t, empty.Total)

	_, err = rejections.Ensure(ctx, js, rejections.Options{}, 1)
	require.NoError(t, err)
	fe := func(pairs ...string) []schemas.FieldError {
		var out []schemas.FieldError
		for i := 0; i+1 < len(pairs); i += 2 {
			out = append(out, schemas.FieldError{Field: pairs[i], Message: pairs[i+1]})
		}
		return out
	}
	recs := []rejections.Record{
		{EventType: "order.created", ID: "old", Outcome: rejections.Rejected, Time: now.Add(-2 * time.Hour), Reasons: fe("metadata.amount", "too old to count")},
		{EventType: "order.created", ID: "o1", Outcome: rejections.Rejected, Time: now.Add(-30 * time.Minute), Reasons: fe("metadata.amount", "must be >= 0", "metadata.currency", "bad")},
		{EventType: "order.created", ID: "o2", Outcome: rejections.Quarantined, Time: now.Add(-10 * time.Minute), Reasons: fe("metadata.amount", "must be >= 0 (o2)", "metadata.amount", "twice in one event")},
		{EventType: "order.created", ID: "o3", Outcome: rejections.Rejected, Time: now.Add(-20 * time.Second), Reasons: fe("metadata.amount", "newest")},
		{EventType: "page_view", ID: "p1", Outcome: rejections.Rejected, Time: now.Add(-5 * time.Minute), Reasons: fe("metadata.path", "required")},
		{EventType: "bad type!", Outcome: rejections.Rejected, Time: now.Add(-time.Minute / 2), Reasons: fe("eventType", "invalid")},
	}
	for _, r := range recs {
		r.Body = []byte(`{}`)
		m, err := r.Msg()
		require.NoError(t, err)
		_, err = js.PublishMsg(ctx, m)
		require.NoError(t, err)
	}

	sum, err := rejections.Summarize(ctx, js, rejections.SummaryQuery{Since: now.Add(-time.Hour), Now: now})
	require.NoError(t, err)
	require.False(t, sum.Truncated)
	require.Equal(t, 5, sum.Total, "the record before the window is not counted")
	require.Len(t, sum.Types, 3)
	o := sum.Types[0]
	require.Equal(t, "order.created", o.Type, "most refused first")
	require.Equal(t, 3, o.Refused)
	require.Equal(t, 2, o.Rejected)
	require.Equal(t, 1, o.Quarantined)
	require.Equal(t, 1, o.LastMinute)
	require.InDelta(t, 3.0/60, o.PerMinute, 0.001)
	require.Equal(t, now.Add(-20*time.Second), o.Last)
	require.Len(t, o.Fields, 2)
	require.Equal(t, "metadata.amount", o.Fields[0].Field)
	require.Equal(t, 3, o.Fields[0].Count, "an event counts once per field")
	require.Equal(t, "o3", o.Fields[0].Example.ID, "the newest example")
	require.Equal(t, "newest", o.Fields[0].Example.Message)
	require.NotZero(t, o.Fields[0].Example.Seq)
	require.Equal(t, "metadata.currency", o.Fields[1].Field)
	require.ElementsMatch(t, []string{"page_view", rejections.InvalidType}, []string{sum.Types[1].Type, sum.Types[2].Type})

	top1, err := rejections.Summarize(ctx, js, rejections.SummaryQuery{Since: now.Add(-time.Hour), Now: now, Type: "order.created", Top: 1})
	require.NoError(t, err)
	require.Len(t, top1.Types, 1)
	require.Len(t, top1.Types[0].Fields, 1)

	// Max 2 of a window of 5: the newest 2 records of the stream.
	capped, err := rejections.Summarize(ctx, js, rejections.SummaryQuery{Since: now.Add(-time.Hour), Now: now, Max: 2})
	require.NoError(t, err)
	require.True(t, capped.Truncated)
	require.Equal(t, 2, capped.Scanned)
	require.Equal(t, 2, capped.Total)
	require.Equal(t, now.Add(-5*time.Minute), capped.From, "the oldest record counted")
}
