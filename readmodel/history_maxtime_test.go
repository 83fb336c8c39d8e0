package readmodel_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/testsupport"
)

// TestHistoryFindTellsTheStoreItsDeadline: a find under a deadline carries
// it as maxTimeMS, so the store stops a query its caller gave up on (the
// driver sends none with a find; FerretDB scanned on after the gateway's
// 5 s budget had answered 503); one without a deadline carries none. The
// answers are the same.
func TestHistoryFindTellsTheStoreItsDeadline(t *testing.T) {
	t.Parallel()
	m := testsupport.StartMongo(t)
	var (
		mu    sync.Mutex
		finds []bson.Raw
	)
	client := m.ClientWith(t, options.Client().SetMonitor(&event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			if e.CommandName == "find" {
				mu.Lock()
				finds = append(finds, e.Command)
				mu.Unlock()
			}
		},
	}))
	h := readmodel.NewHistory(client.Database(testsupport.UniqueName(t)), readmodel.DefaultCollections())
	ctx := context.Background()
	require.NoError(t, h.EnsureIndexes(ctx))
	_, err := h.Apply(ctx, spreadEvents(30, 0, time.Now().Add(-time.Hour).UnixMilli()))
	require.NoError(t, err)
	q := readmodel.Query{UserID: "u1", Limit: 10}

	lastFind := func() bson.Raw {
		mu.Lock()
		defer mu.Unlock()
		require.NotEmpty(t, finds)
		return finds[len(finds)-1]
	}
	bounded, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	withDeadline, next, err := h.Find(bounded, q)
	require.NoError(t, err)
	require.Len(t, withDeadline, 10)
	maxTime, err := lastFind().LookupErr("maxTimeMS")
	require.NoError(t, err, "the find carries no maxTimeMS: %s", lastFind())
	ms, ok := maxTime.AsInt64OK()
	require.True(t, ok, "maxTimeMS %s", maxTime)
	require.Positive(t, ms)
	require.LessOrEqual(t, ms, time.Minute.Milliseconds())

	without, nextWithout, err := h.Find(ctx, q)
	require.NoError(t, err)
	_, err = lastFind().LookupErr("maxTimeMS")
	require.Error(t, err, "a find without a deadline carries maxTimeMS: %s", lastFind())
	require.Equal(t, withDeadline, without)
	require.Equal(t, next, nextWithout)
}
