package ingest_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/ingest"
)

// Item 2 of issue 13: a timestamp further ahead than INGEST_MAX_FUTURE_SKEW
// is refused with a 400 naming timestamp; one inside it is stored.
func TestFutureTimestampBoundedBySkew(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *ingest.Config) { c.MaxFutureSkew = time.Hour })
	event := func(ts int64) string {
		return `{"eventType":"skew","userId":"u","timestamp":` + strconv.FormatInt(ts, 10) + `}`
	}
	r := h.post(t, jsonType, event(time.Now().Add(30*time.Minute).UnixMilli()))
	require.Equal(t, 202, r.status, "body: %v", r.body)

	r = h.post(t, jsonType, event(time.Now().Add(2*time.Hour).UnixMilli()))
	requireProblem(t, r, 400)
	errs := r.body["errors"].([]any)
	require.Len(t, errs, 1)
	require.Equal(t, "timestamp", errs[0].(map[string]any)["field"])
	require.Contains(t, errs[0].(map[string]any)["message"], "1h0m0s ahead")

	r = h.post(t, jsonType, `[`+event(time.Now().UnixMilli())+`,`+event(time.Now().Add(2*time.Hour).Unix())+`]`)
	require.Equal(t, 202, r.status, "body: %v", r.body)
	require.EqualValues(t, 1, r.body["accepted"])
	require.EqualValues(t, 1, r.body["rejected"])
	require.Equal(t, uint64(2), h.count(t, "events.skew"))
}
