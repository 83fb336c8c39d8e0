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

// Issue 13 item 7, decided: a timestamp below 1e10 is seconds (CONTRACT),
// so 1.5 is 1.5 s after the epoch, stored as 1,500 ms; fractions are kept
// to the millisecond and finer ones rounded. The README's envelope table
// says so; this pins it.
func TestTimestampUnitsAsDocumented(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for lit, want := range map[string]int64{
		"1.5":               1_500,
		"1700000000":        1_700_000_000_000,
		"1700000000.1234":   1_700_000_000_123,
		"1700000000123":     1_700_000_000_123,
		"1700000000123.6":   1_700_000_000_124,
		"10000000000":       10_000_000_000,
		"1.7000000001234e9": 1_700_000_000_123,
	} {
		r := h.post(t, jsonType, `{"eventType":"units","userId":"u","timestamp":`+lit+`}`)
		require.Equal(t, 202, r.status, "%s: %v", lit, r.body)
		require.Equal(t, want, h.storedTimestamp(t, uint64(r.body["seq"].(float64))), lit)
	}
}
