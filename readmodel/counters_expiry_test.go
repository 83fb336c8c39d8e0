package readmodel_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// Item 2 of issue 13: a bucket's expiry follows the event's minute, but is
// never further away than retention plus the accepted clock skew, however
// far ahead the timestamp is. A bucket inside the skew still outlives its
// minute.
func TestCountersExpiryBoundedForFutureTimestamps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := testsupport.StartRedis(t).Client(t)
	const retention, skew = 2 * time.Hour, time.Hour
	c := readmodel.NewCounters(rdb, readmodel.CountersOptions{MinuteRetention: retention, MaxFutureSkew: skew})
	now := time.Now()
	near := now.Add(45 * time.Minute)
	evs := []schemas.Event{
		{ID: "far", EventType: "f", Timestamp: now.AddDate(100, 0, 0).UnixMilli(), Seq: 1},
		{ID: "y9999", EventType: "f", Timestamp: 253402300799999, Seq: 2},
		{ID: "near", EventType: "n", Timestamp: near.UnixMilli(), Seq: 3},
		{ID: "now", EventType: "n", Timestamp: now.UnixMilli(), Seq: 4},
	}
	_, err := c.Apply(ctx, evs, now)
	require.NoError(t, err)

	keys, err := rdb.Keys(ctx, readmodel.DefaultPrefix+"*").Result()
	require.NoError(t, err)
	bound := retention + skew + 2*time.Minute
	var nearMinute bool
	for _, k := range keys {
		ttl, err := rdb.TTL(ctx, k).Result()
		require.NoError(t, err)
		require.LessOrEqual(t, ttl, max(bound, 7*24*time.Hour+time.Minute), "key %s", k)
		if k == readmodel.DefaultPrefix+"all" || k == readmodel.DefaultPrefix+"meta" || strings.HasPrefix(k, readmodel.DefaultPrefix+"seen:") {
			continue
		}
		require.Positive(t, ttl, "bucket %s expires", k)
		require.LessOrEqual(t, ttl, bound, "bucket %s expires within retention+skew", k)
		if k == readmodel.DefaultPrefix+"m:"+strconv.FormatInt(near.Unix()-near.Unix()%60, 10) {
			nearMinute = true
			require.Greater(t, ttl, 45*time.Minute+retention-5*time.Minute, "a bucket inside the skew keeps its retention")
		}
	}
	require.True(t, nearMinute, "the near-future minute has a bucket: %v", keys)
}
