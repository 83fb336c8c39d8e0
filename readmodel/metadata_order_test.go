package readmodel_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// Issue 13 item 7: the history returned metadata keys sorted, while the
// README and /stream keep the order sent.
func TestHistoryKeepsMetadataKeyOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := readmodel.NewHistory(testsupport.StartMongo(t).Database(t), readmodel.DefaultCollections())
	require.NoError(t, h.EnsureIndexes(ctx))
	sent := `{"zeta":1,"alpha":{"yank":"y","bravo":[{"k2":2,"k1":1}]},"mid":true,"dup":1,"aardvark":null,"dup":2}`
	want := `{"zeta":1,"alpha":{"yank":"y","bravo":[{"k2":2,"k1":1}]},"mid":true,"dup":2,"aardvark":null}`
	now := time.Now().UnixMilli()
	_, err := h.Apply(ctx, []schemas.Event{{ID: "ordered", EventType: "t", UserID: "u", Timestamp: now,
		ReceivedAt: now, Seq: 1, Metadata: json.RawMessage(sent)}})
	require.NoError(t, err)

	got, err := h.Get(ctx, "ordered")
	require.NoError(t, err)
	require.Equal(t, want, string(got.Metadata), "keys in the order sent (a repeated key: first place, last value)")
	page, _, err := h.Find(ctx, readmodel.Query{Limit: 10})
	require.NoError(t, err)
	require.Len(t, page, 1)
	require.Equal(t, want, string(page[0].Metadata))
}
