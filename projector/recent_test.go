package projector

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// requireCacheExact waits until the recent-events cache is complete, caught
// up and holds the newest min(sent, bound) events, then requires that it
// answers the first pages of every query shape exactly as MongoDB does.
func (e *testEnv) requireCacheExact(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	history := readmodel.NewHistory(e.db, readmodel.DefaultCollections())
	rc := readmodel.NewRecent(e.redis, readmodel.RecentOptions{})
	bound := e.cfg.RecentMaxEvents
	if bound == 0 {
		bound = readmodel.DefaultRecentMaxEvents
	}
	want := int64(min(e.total(), bound))
	require.Eventually(t, func() bool {
		st, err := rc.State(ctx)
		if err != nil || !st.Complete || st.Count != want {
			return false
		}
		_, ok, _, err := rc.Find(ctx, readmodel.Query{Limit: 50})
		return err == nil && ok
	}, 3*time.Minute, 50*time.Millisecond, "cache never held %d events", want)

	queries := []readmodel.Query{{Limit: 50}, {Limit: 500}}
	for _, typ := range eventTypes {
		queries = append(queries, readmodel.Query{Types: []string{typ}, Limit: 50})
	}
	for u := range 7 {
		queries = append(queries, readmodel.Query{UserID: fmt.Sprintf("u%d", u), Limit: 20},
			readmodel.Query{UserID: fmt.Sprintf("u%d", u), Types: eventTypes[:2], Limit: 20})
	}
	for _, q := range queries {
		evs, next, err := history.Find(ctx, q)
		require.NoError(t, err)
		body, err := json.Marshal(evs)
		require.NoError(t, err)
		page, ok, reason, err := rc.Find(ctx, q)
		require.NoError(t, err)
		require.True(t, ok, "query %+v not answered by the cache: %s", q, reason)
		require.Equal(t, string(body), string(page.Body), "query %+v", q)
		require.Equal(t, next, page.Next, "query %+v", q)
	}
}

func TestRecentCacheExactAfterCrashAndWithTwoProjectors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.publish(t, 2000)
	var stop func()
	stop = e.start(t, crashMidBatch(func() { go stop() }))
	require.Eventually(t, func() bool {
		n, _ := readmodel.NewHistory(e.db, readmodel.DefaultCollections()).Count(context.Background())
		m, _ := readmodel.NewCounters(e.redis, readmodel.CountersOptions{}).Snapshot(context.Background(), time.Now())
		st, _ := readmodel.NewRecent(e.redis, readmodel.RecentOptions{}).State(context.Background())
		return n > 0 || m.Total > 0 || st.Count > 0
	}, 3*time.Minute, 20*time.Millisecond)
	stop()
	e.start(t, nil)
	e.start(t, nil)
	e.publish(t, 1000)
	e.requireExact(t)
	e.requireCacheExact(t)
}

func TestRecentCacheBoundedAndRebuiltAfterFlush(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.cfg.RecentMaxEvents = 1000
	e.publish(t, 3000)
	e.start(t, nil)
	e.requireExact(t)
	e.requireCacheExact(t)
	rc := readmodel.NewRecent(e.redis, readmodel.RecentOptions{})
	_, ok, reason, err := rc.Find(context.Background(), readmodel.Query{Limit: 1000, Types: []string{eventTypes[0]}})
	require.NoError(t, err)
	require.False(t, ok, "a query reaching past the bound is MongoDB's")
	require.Equal(t, "outside", reason)

	require.NoError(t, e.redis.FlushAll(context.Background()).Err())
	e.requireCacheExact(t) // idle: the watcher notices
	require.NoError(t, e.redis.FlushAll(context.Background()).Err())
	e.publish(t, 500) // busy: the cache script notices
	e.requireExact(t)
	e.requireCacheExact(t)
}

// TestRecentCacheKeepsFirstCopyOfAnID: a second stream message with an id
// already stored is left out of the cache, as MongoDB keeps the first copy.
func TestRecentCacheKeepsFirstCopyOfAnID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.publish(t, 10)
	e.start(t, nil)
	e.requireExact(t)
	e.requireCacheExact(t)
	rc := readmodel.NewRecent(e.redis, readmodel.RecentOptions{})
	dup := schemas.Event{ID: "ev-000003", EventType: "signup", UserID: "u3", Timestamp: time.Now().UnixMilli(), Seq: 99}
	_, err := rc.Apply(context.Background(), []schemas.Event{dup}, time.Now())
	require.NoError(t, err)
	e.requireCacheExact(t)
}

// TestRecentCacheWholeOnlyFromAStreamThatLostNothing: the projector marks a
// complete cache whole while the stream never lost an event, and the cache
// then answers "none" for a user it never saw; after the stream lost an
// event and Redis was flushed, the rebuilt cache lacks what MongoDB keeps,
// and is not marked whole again (the same query goes to MongoDB).
func TestRecentCacheWholeOnlyFromAStreamThatLostNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	e.cfg.RecentMaxEvents = 600
	e.publish(t, 1000)
	e.start(t, nil)
	e.requireExact(t)
	e.requireCacheExact(t)
	rc := readmodel.NewRecent(e.redis, readmodel.RecentOptions{})
	nobody := readmodel.Query{Limit: 20, UserID: "nobody"}
	require.Eventually(t, func() bool {
		st, err := rc.State(ctx)
		return err == nil && st.Whole
	}, 3*time.Minute, 20*time.Millisecond, "the cache of a stream that lost nothing is never marked whole")
	page, ok, reason, err := rc.Find(ctx, nobody)
	require.NoError(t, err)
	require.True(t, ok, "a user never seen, in a whole cache: %s", reason)
	require.Equal(t, "[]", string(page.Body))

	stream, err := e.js.Stream(ctx, schemas.StreamName)
	require.NoError(t, err)
	require.NoError(t, stream.DeleteMsg(ctx, 10))
	require.NoError(t, e.redis.FlushAll(ctx).Err())
	e.requireCacheExact(t)
	// Two more rounds of the projector's watch after the rebuild: the
	// cache's checkpoint, recorded by the watch, moves past each event.
	for seq := uint64(1001); seq <= 1002; seq++ {
		e.publish(t, 1)
		e.waitCheckpoints(t, seq)
	}
	st, err := rc.State(ctx)
	require.NoError(t, err)
	require.True(t, st.Complete)
	require.False(t, st.Whole, "rebuilt from a stream that lost an event")
	_, ok, reason, err = rc.Find(ctx, nobody)
	require.NoError(t, err)
	require.False(t, ok)
	require.Equal(t, "outside", reason)
}
