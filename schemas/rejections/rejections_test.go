package rejections_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/rejections"
	"github.com/kilnhq/kiln/testsupport"
)

func TestRecordsListAndEach(t *testing.T) {
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	ctx := context.Background()
	s, err := rejections.Ensure(ctx, js, rejections.Options{}, 1)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, rejections.DefaultMaxAge, info.Config.MaxAge)
	require.EqualValues(t, rejections.DefaultMaxBytes, info.Config.MaxBytes)

	start := time.Now().UTC()
	for i := range 5 {
		typ := "order.created"
		if i%2 == 1 {
			typ = "page_view"
		}
		field := "metadata.amount"
		if i == 4 {
			field = "userId"
		}
		r := rejections.Record{
			EventType: typ, ID: fmt.Sprintf("id-%d", i), ClientID: true, Outcome: rejections.Quarantined,
			Reasons: []schemas.FieldError{{Field: field, Message: "bad\nvalue"}},
			KeyID:   rejections.KeyID("secret"), Time: start.Add(time.Duration(i) * time.Second),
			Body: []byte(fmt.Sprintf(`{"id":"id-%d", "eventType":%q}`, i, typ)),
		}
		m, err := r.Msg()
		require.NoError(t, err)
		_, err = js.PublishMsg(ctx, m)
		require.NoError(t, err)
	}
	m, err := (&rejections.Record{EventType: "bad type!", Outcome: rejections.Rejected, Time: start}).Msg()
	require.NoError(t, err)
	require.Equal(t, rejections.SubjectUntyped, m.Subject)
	require.NotContains(t, m.Header.Get(rejections.Header), "secret")

	recs, next, err := rejections.List(ctx, s, rejections.Query{Type: "order.created", Limit: 2})
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.Equal(t, "id-4", recs[0].ID, "newest first")
	require.Equal(t, "id-2", recs[1].ID)
	require.Equal(t, "bad\nvalue", recs[0].Reasons[0].Message)
	require.Equal(t, `{"id":"id-4", "eventType":"order.created"}`, string(recs[0].Body), "body as sent")
	require.NotZero(t, next)
	recs, next, err = rejections.List(ctx, s, rejections.Query{Type: "order.created", Limit: 2, Before: next})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, "id-0", recs[0].ID)
	require.Zero(t, next)

	recs, _, err = rejections.List(ctx, s, rejections.Query{Field: "metadata", Limit: 10})
	require.NoError(t, err)
	require.Len(t, recs, 4)
	recs, _, err = rejections.List(ctx, s, rejections.Query{Since: start.Add(3 * time.Second), Limit: 10})
	require.NoError(t, err)
	require.Len(t, recs, 2)

	var ids []string
	require.NoError(t, rejections.Each(ctx, js, rejections.Query{Type: "page_view"}, func(r rejections.Record) error {
		ids = append(ids, r.ID)
		return nil
	}))
	require.Equal(t, []string{"id-1", "id-3"}, ids)
	ids = nil
	require.NoError(t, rejections.Each(ctx, js, rejections.Query{Type: "nothing.here"}, func(r rejections.Record) error {
		ids = append(ids, r.ID)
		return nil
	}))
	require.Empty(t, ids)
}
