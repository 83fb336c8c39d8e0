package gateway_test

import (
	"context"
	"net/url"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
)

// baseMs is the fixtures' first timestamp: 2026-01-01T00:00:00Z.
const baseMs int64 = 1767225600000

// page reads every page of url by following next (the X-Next-Cursor or the
// Link of each answer) and returns the ids in order.
func pages(t *testing.T, first string, next func(r response) string) []string {
	t.Helper()
	var ids []string
	u := first
	for range 100 {
		r := get(t, u)
		require.Equal(t, 200, r.status, "%s: %s", u, r.body)
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		for _, ev := range decode[[]schemas.Event](t, r) {
			require.NotZero(t, ev.Seq, "stored events carry seq")
			ids = append(ids, ev.ID)
		}
		if u = next(r); u == "" {
			require.Empty(t, r.header.Get("Link"), "the last page has no next link")
			return ids
		}
	}
	t.Fatal("pagination did not end")
	return nil
}

func TestListEventsPaginatesEveryMatchOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	base := time.UnixMilli(baseMs).UTC()
	evs := fixture(60, base.UnixMilli())
	_, err := h.history.Apply(context.Background(), evs)
	require.NoError(t, err)

	from, to := base.UnixMilli()+2000, base.UnixMilli()+12000
	want := newestFirst(evs, func(ev schemas.Event) bool {
		return (ev.EventType == "a" || ev.EventType == "b") && ev.Timestamp >= from && ev.Timestamp <= to
	})
	require.Len(t, want, 15)
	first := h.url + "/events?type=a&type=b&from=" + strconv.FormatInt(from, 10) + "&to=" + strconv.FormatInt(to, 10) + "&limit=2"

	t.Run("X-Next-Cursor", func(t *testing.T) {
		t.Parallel()
		got := pages(t, first, func(r response) string {
			if c := r.header.Get("X-Next-Cursor"); c != "" {
				return first + "&cursor=" + url.QueryEscape(c)
			}
			return ""
		})
		require.Equal(t, want, got)
	})
	t.Run("Link", func(t *testing.T) {
		t.Parallel()
		linkNext := regexp.MustCompile(`^<(/events\?[^>]+)>; rel="next"$`)
		got := pages(t, first, func(r response) string {
			link := r.header.Get("Link")
			if link == "" {
				return ""
			}
			m := linkNext.FindStringSubmatch(link)
			require.NotNil(t, m, "Link: %s", link)
			return h.url + m[1]
		})
		require.Equal(t, want, got)
	})
	t.Run("userId", func(t *testing.T) {
		t.Parallel()
		got := pages(t, h.url+"/events?userId=u1&limit=7", func(r response) string {
			if c := r.header.Get("X-Next-Cursor"); c != "" {
				return h.url + "/events?userId=u1&limit=7&cursor=" + url.QueryEscape(c)
			}
			return ""
		})
		require.Equal(t, newestFirst(evs, func(ev schemas.Event) bool { return ev.UserID == "u1" }), got)
	})
	t.Run("default limit is 50", func(t *testing.T) {
		t.Parallel()
		r := get(t, h.url+"/events")
		require.Equal(t, 200, r.status)
		require.Len(t, decode[[]schemas.Event](t, r), 50)
		require.NotEmpty(t, r.header.Get("X-Next-Cursor"))
	})
	t.Run("no match is an empty array", func(t *testing.T) {
		t.Parallel()
		r := get(t, h.url+"/events?type=nope")
		require.Equal(t, 200, r.status)
		require.Equal(t, "[]", string(r.body))
		require.Empty(t, r.header.Get("X-Next-Cursor"))
	})
}

func TestListEventsTimeForms(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	base := time.UnixMilli(baseMs).UTC()
	evs := fixture(40, base.UnixMilli())
	_, err := h.history.Apply(context.Background(), evs)
	require.NoError(t, err)

	from, to := base.Add(3*time.Second), base.Add(9*time.Second)
	want := newestFirst(evs, func(ev schemas.Event) bool {
		return ev.Timestamp >= from.UnixMilli() && ev.Timestamp <= to.UnixMilli()
	})
	require.Len(t, want, 14)
	paris := time.FixedZone("CET", 3600)
	tests := []struct{ name, from, to string }{
		{"ms", strconv.FormatInt(from.UnixMilli(), 10), strconv.FormatInt(to.UnixMilli(), 10)},
		{"RFC 3339 UTC", from.Format(time.RFC3339), to.Format(time.RFC3339)},
		{"RFC 3339 offset", from.In(paris).Format(time.RFC3339), to.In(paris).Format(time.RFC3339Nano)},
		{"seconds, like event timestamps", strconv.FormatInt(from.Unix(), 10), strconv.FormatInt(to.Unix(), 10)},
		{"mixed", from.Format(time.RFC3339), strconv.FormatInt(to.UnixMilli(), 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := url.Values{"from": {tt.from}, "to": {tt.to}, "limit": {"1000"}}
			r := get(t, h.url+"/events?"+q.Encode())
			require.Equal(t, 200, r.status, "%s", r.body)
			var got []string
			for _, ev := range decode[[]schemas.Event](t, r) {
				got = append(got, ev.ID)
			}
			require.Equal(t, want, got)
		})
	}
	t.Run("unencoded + of an offset", func(t *testing.T) {
		t.Parallel()
		r := get(t, h.url+"/events?limit=1000&from="+from.In(paris).Format(time.RFC3339)+"&to="+to.In(paris).Format(time.RFC3339))
		require.Equal(t, 200, r.status, "%s", r.body)
		require.Len(t, decode[[]schemas.Event](t, r), len(want))
	})
}

func TestGetEvent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	evs := fixture(3, baseMs)
	evs[2].ID = "batch-key/0 é" // ids from Idempotency-Key batches contain '/'
	_, err := h.history.Apply(context.Background(), evs)
	require.NoError(t, err)

	for _, want := range evs {
		r := get(t, h.url+"/events/"+url.PathEscape(want.ID))
		require.Equal(t, 200, r.status, "%s: %s", want.ID, r.body)
		got := decode[schemas.Event](t, r)
		require.JSONEq(t, string(want.Metadata), string(got.Metadata))
		got.Metadata = want.Metadata
		require.Equal(t, want, got)
	}
	p := requireProblem(t, get(t, h.url+"/events/missing"), 404)
	require.Equal(t, "Event not found", p.Title)
}
