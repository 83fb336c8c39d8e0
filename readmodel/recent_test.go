package readmodel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// randomEvents are n events in stream order with colliding timestamps,
// mixed metadata and a few second copies of an id.
func randomEvents(rng *rand.Rand, n int, base int64) []schemas.Event {
	metas := []string{
		`{"n":%d,"f":1.5,"s":"x","nested":{"k":[1,"two",null,true]}}`,
		`{"z":%d,"a":{"y":-2.25,"b":"\u00e9<&>"},"big":12345678901234}`,
		`{"$odd.key":%d}`,
		`{"list":[%d,{"b":1,"a":2}],"neg":-0.5,"e":1e21}`,
	}
	out := make([]schemas.Event, n)
	for i := range out {
		out[i] = schemas.Event{
			ID: fmt.Sprintf("r%04d", i), EventType: []string{"a", "b", "c", "order.created"}[rng.IntN(4)],
			UserID: fmt.Sprintf("u%d", rng.IntN(6)), Timestamp: base + rng.Int64N(120)*1000,
			ReceivedAt: base + int64(i), Seq: uint64(i + 1),
		}
		if k := rng.IntN(5); k < len(metas) {
			out[i].Metadata = json.RawMessage(fmt.Sprintf(metas[k], i))
		}
		if i%50 != 0 && rng.IntN(25) == 0 { // a retried event stored twice
			out[i].ID, out[i].Timestamp = out[i-1].ID, out[i-1].Timestamp
		}
	}
	return out
}

func randomQuery(rng *rand.Rand, base int64) readmodel.Query {
	q := readmodel.Query{Limit: 1 + rng.IntN(40)}
	for range rng.IntN(3) {
		q.Types = append(q.Types, []string{"a", "b", "c", "order.created", "none"}[rng.IntN(5)])
	}
	if rng.IntN(3) == 0 {
		q.UserID = fmt.Sprintf("u%d", rng.IntN(7))
	}
	if rng.IntN(3) == 0 {
		q.From = base + rng.Int64N(120)*1000
	}
	if rng.IntN(3) == 0 {
		q.To = base + rng.Int64N(120)*1000
		if q.From > q.To {
			q.From, q.To = q.To, q.From
		}
	}
	return q
}

// bothStores is a history (FerretDB) and a cache (MaxEvents 150) given the
// same events, for comparing their answers.
type bothStores struct {
	t   *testing.T
	ctx context.Context
	h   *readmodel.History
	rc  *readmodel.Recent
	rdb *redis.Client
	now time.Time
}

func newBothStores(t *testing.T) *bothStores {
	ctx := context.Background()
	db := testsupport.StartMongo(t).Database(t)
	rdb := testsupport.StartRedis(t).Client(t)
	h := readmodel.NewHistory(db, readmodel.DefaultCollections())
	require.NoError(t, h.EnsureIndexes(ctx))
	return &bothStores{t: t, ctx: ctx, h: h, rc: readmodel.NewRecent(rdb, readmodel.RecentOptions{MaxEvents: 150}), rdb: rdb, now: time.Now()}
}

// apply gives both stores the events in batches of 50, the cache each
// batch's first half twice (a redelivery changes nothing).
func (s *bothStores) apply(evs []schemas.Event) {
	for i := 0; i < len(evs); i += 50 {
		batch := evs[i:min(i+50, len(evs))]
		_, err := s.h.Apply(s.ctx, batch)
		require.NoError(s.t, err)
		_, err = s.rc.Apply(s.ctx, batch, s.now)
		require.NoError(s.t, err)
		_, err = s.rc.Apply(s.ctx, batch[:len(batch)/2], s.now)
		require.NoError(s.t, err)
	}
}

// complete starts the cache and marks it complete.
func (s *bothStores) complete() (epoch string) {
	epoch, _, err := s.rc.Start(s.ctx, s.now)
	require.NoError(s.t, err)
	done, err := s.rc.MarkComplete(s.ctx, epoch)
	require.NoError(s.t, err)
	require.True(s.t, done)
	return epoch
}

// walk pages through q from MongoDB, requiring the cache's bytes and
// cursor on every page it answers, and returns, page by page, whether it
// answered (the gateway asks the cache first, MongoDB when it cannot).
func (s *bothStores) walk(q readmodel.Query) (cached []bool) {
	s.t.Helper()
	for page := 0; ; page++ {
		require.Less(s.t, page, 500, "walk did not end")
		events, next, err := s.h.Find(s.ctx, q)
		require.NoError(s.t, err)
		if events == nil {
			events = []schemas.Event{}
		}
		want, err := json.Marshal(events)
		require.NoError(s.t, err)
		got, ok, _, err := s.rc.Find(s.ctx, q)
		require.NoError(s.t, err)
		cached = append(cached, ok)
		if ok {
			require.Equal(s.t, string(want), string(got.Body), "page %d: %+v", page, q)
			require.Equal(s.t, next, got.Next, "page %d: %+v", page, q)
		}
		if next == nil {
			return cached
		}
		q.After = next
	}
}

// TestRecentAnswersLikeMongoDB runs random queries as page walks twice: once
// all from MongoDB, once cache-first (falling back to MongoDB page by page,
// as the gateway does), and requires the same bytes and cursors on every
// page, including walks that cross from the cache into MongoDB.
func TestRecentAnswersLikeMongoDB(t *testing.T) {
	t.Parallel()
	s := newBothStores(t)
	ctx, rc := s.ctx, s.rc
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	const base = int64(1767225600000)
	s.apply(randomEvents(rng, 400, base))

	q := readmodel.Query{Limit: 10}
	_, ok, reason, err := rc.Find(ctx, q)
	require.NoError(t, err)
	require.False(t, ok, "an incomplete cache is not used")
	require.Equal(t, "rebuilding", reason)
	s.complete()
	require.NoError(t, rc.SetPositions(ctx, 399, 400))
	_, ok, reason, err = rc.Find(ctx, q)
	require.NoError(t, err)
	require.False(t, ok, "a cache behind the history is not used")
	require.Equal(t, "behind", reason)
	require.NoError(t, rc.SetPositions(ctx, 400, 400))
	st, err := rc.State(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 150, st.Count, "trimmed to its bound")
	require.NotZero(t, st.Oldest().Timestamp)

	var cachePages, mongoPages, crossings int
	for range 300 {
		pages := s.walk(randomQuery(rng, base))
		for i, ok := range pages {
			if ok {
				cachePages++
				continue
			}
			mongoPages++
			if i > 0 && pages[i-1] {
				crossings++
			}
		}
	}
	t.Logf("pages from the cache %d, from MongoDB %d, walks crossing %d", cachePages, mongoPages, crossings)
	require.Greater(t, cachePages, 100)
	require.Greater(t, mongoPages, 50)
	require.Greater(t, crossings, 10, "walks cross from the cache into MongoDB")
}

// TestRecentAnswersForNamesItNeverTrimmed: a cache built from a stream that
// never lost an event (MarkWhole) answers a query by user or type below
// its floor too when that user or type never lost an event to a trim or
// to the floor: every such walk reads the bytes and cursors MongoDB gives,
// from the cache alone, including "none" for a user with no event yet.
// A user or type that lost one, a cache not marked whole, and a cache
// trimmed by a writer that keeps no filter are answered as before.
func TestRecentAnswersForNamesItNeverTrimmed(t *testing.T) {
	t.Parallel()
	s := newBothStores(t)
	ctx, rc, rdb := s.ctx, s.rc, s.rdb
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	const base = int64(1767225600000)

	// 400 events of users u0-u5 and types a, b, c, order.created, all
	// trimmed at some point; then the new users v0-v2 and the type d,
	// newer than all of them; then user late's event of type e, stamped
	// below the floor (not cached: lost), then more of v0-v2 and d.
	evs := randomEvents(rng, 400, base)
	for i := range 60 {
		evs = append(evs, schemas.Event{ID: fmt.Sprintf("v%04d", i), EventType: []string{"a", "d"}[i%2],
			UserID: fmt.Sprintf("v%d", i%3), Timestamp: base + 200_000 + int64(i)*500, ReceivedAt: base + 400 + int64(i)})
		if i == 30 {
			evs = append(evs, schemas.Event{ID: "late", EventType: "e", UserID: "late", Timestamp: base + 1000, ReceivedAt: base + 430})
		}
	}
	for i := range evs {
		evs[i].Seq = uint64(i + 1)
	}
	s.apply(evs)
	epoch := s.complete()
	require.NoError(t, rc.SetPositions(ctx, uint64(len(evs)), uint64(len(evs))))
	// walk reports whether the cache answered every page of q (the last,
	// not full, included).
	walk := func(q readmodel.Query) bool { return !slices.Contains(s.walk(q), false) }
	never := []readmodel.Query{
		{Limit: 100, UserID: "v1"}, {Limit: 7, UserID: "v2"}, {Limit: 100, UserID: "nobody"},
		{Limit: 100, Types: []string{"d"}}, {Limit: 9, Types: []string{"d", "none"}},
		{Limit: 100, UserID: "v0", Types: []string{"a", "b"}}, {Limit: 100, UserID: "v0", From: base},
		// A user's index is read for its types: b lost events, v0 none.
		{Limit: 100, UserID: "v0", From: base, Types: []string{"b"}},
	}
	lost := []readmodel.Query{
		{Limit: 100, UserID: "late"}, {Limit: 100, UserID: "u3"}, {Limit: 100, Types: []string{"e"}},
		{Limit: 100, Types: []string{"d", "e"}}, {Limit: 100}, {Limit: 100, UserID: "late", Types: []string{"d"}},
	}
	for _, q := range append(never, lost...) {
		require.False(t, walk(q), "not whole: %+v ends in MongoDB", q)
	}

	ok, err := rc.MarkWhole(ctx, epoch)
	require.NoError(t, err)
	require.True(t, ok)
	st, err := rc.State(ctx)
	require.NoError(t, err)
	require.True(t, st.Whole)
	for _, q := range never {
		require.True(t, walk(q), "whole: %+v is answered by the cache to its end", q)
	}
	for _, q := range lost {
		require.False(t, walk(q), "lost an event: %+v ends in MongoDB", q)
	}
	for range 200 {
		q := randomQuery(rng, base)
		if rng.IntN(2) == 0 {
			q.UserID = []string{"v0", "v1", "v2", "late", "nobody", "u1"}[rng.IntN(6)]
		}
		walk(q)
	}

	// A trim by a writer that keeps no filter moves the floor alone.
	meta := readmodel.RecentPrefixFor(readmodel.DefaultPrefix) + "meta"
	require.NoError(t, rdb.HSet(ctx, meta, "floor", rdb.HGet(ctx, meta, "floor").Val()+"0").Err())
	require.False(t, walk(readmodel.Query{Limit: 100, UserID: "nobody"}), "a filter not kept at every trim is not believed")
}

// TestRecentNotWholeAnswersFullPagesOnly: a cache that trimmed nothing but
// is not whole — rebuilt from a stream that had lost its oldest events,
// which MongoDB keeps — answers only pages it holds in full; marked whole,
// it answers the rest too.
func TestRecentNotWholeAnswersFullPagesOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := testsupport.StartRedis(t).Client(t)
	rc := readmodel.NewRecent(rdb, readmodel.RecentOptions{})
	now := time.Now()
	evs := randomEvents(rand.New(rand.NewPCG(1, 2)), 50, 1767225600000)
	_, err := rc.Apply(ctx, evs[10:], now) // the stream had lost the first ten
	require.NoError(t, err)
	epoch, _, err := rc.Start(ctx, now)
	require.NoError(t, err)
	done, err := rc.MarkComplete(ctx, epoch)
	require.NoError(t, err)
	require.True(t, done)
	require.NoError(t, rc.SetPositions(ctx, 50, 50))

	_, ok, reason, err := rc.Find(ctx, readmodel.Query{Limit: 100})
	require.NoError(t, err)
	require.False(t, ok, "not whole: MongoDB may hold older events")
	require.Equal(t, "outside", reason)
	page, ok, reason, err := rc.Find(ctx, readmodel.Query{Limit: 5})
	require.NoError(t, err)
	require.True(t, ok, "a full page: %s", reason)
	require.NotNil(t, page.Next)

	done, err = rc.MarkWhole(ctx, epoch)
	require.NoError(t, err)
	require.True(t, done)
	page, ok, reason, err = rc.Find(ctx, readmodel.Query{Limit: 100})
	require.NoError(t, err)
	require.True(t, ok, "whole: %s", reason)
	require.Nil(t, page.Next)
}
