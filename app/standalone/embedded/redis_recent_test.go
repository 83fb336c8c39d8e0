package embedded_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone/embedded"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// TestInProcessRedisRunsTheRecentCache: the cache's scripts work on the
// in-process Redis (miniredis) the standalone falls back to.
func TestInProcessRedisRunsTheRecentCache(t *testing.T) {
	t.Parallel()
	srv, err := embedded.StartRedis("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	opts, err := redis.ParseURL(srv.URL())
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	rc := readmodel.NewRecent(rdb, readmodel.RecentOptions{MaxEvents: 10})
	var evs []schemas.Event
	for i := range 30 {
		evs = append(evs, schemas.Event{ID: fmt.Sprint("e", i), EventType: []string{"a", "b"}[i%2], UserID: fmt.Sprint("u", i%3),
			Timestamp: 1767225600000 + int64(i)*1000, ReceivedAt: 1, Seq: uint64(i + 1), Metadata: json.RawMessage(`{"n":1}`)})
	}
	_, err = rc.Apply(ctx, evs, time.Now())
	require.NoError(t, err)
	epoch, _, err := rc.Start(ctx, time.Now())
	require.NoError(t, err)
	_, err = rc.MarkComplete(ctx, epoch)
	require.NoError(t, err)
	page, ok, reason, err := rc.Find(ctx, readmodel.Query{Limit: 3, Types: []string{"a"}})
	require.NoError(t, err)
	require.True(t, ok, reason)
	var got []schemas.Event
	require.NoError(t, json.Unmarshal(page.Body, &got))
	require.Equal(t, []string{"e28", "e26", "e24"}, []string{got[0].ID, got[1].ID, got[2].ID})
	require.Equal(t, &readmodel.Cursor{Timestamp: got[2].Timestamp, Seq: 25}, page.Next)
	page, ok, _, err = rc.Find(ctx, readmodel.Query{Limit: 1, UserID: "u1", Types: []string{"a"}})
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, json.Unmarshal(page.Body, &got))
	require.Equal(t, "e28", got[0].ID)
	require.EqualValues(t, 29, page.Next.Seq, "the next page continues after e28")
	_, ok, reason, err = rc.Find(ctx, readmodel.Query{Limit: 20})
	require.NoError(t, err)
	require.False(t, ok, "past the bound of 10")
	require.Equal(t, "outside", reason)

	// Its filter of the users and types that lost events (SETBIT and
	// GETBIT here: miniredis has no BITFIELD).
	ok, err = rc.MarkWhole(ctx, epoch)
	require.NoError(t, err)
	require.True(t, ok)
	page, ok, reason, err = rc.Find(ctx, readmodel.Query{Limit: 20, UserID: "nobody"})
	require.NoError(t, err)
	require.True(t, ok, "a user that lost no event: %s", reason)
	require.Equal(t, "[]", string(page.Body))
	_, ok, reason, err = rc.Find(ctx, readmodel.Query{Limit: 20, UserID: "u1"})
	require.NoError(t, err)
	require.False(t, ok, "u1 lost events to the bound")
	require.Equal(t, "outside", reason)
}
