package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// walk follows X-Next-Cursor from first and returns each page's body,
// cursor and source.
func walk(t *testing.T, first string) (bodies, cursors, sources []string) {
	t.Helper()
	u := first
	for range 100 {
		r := get(t, u)
		require.Equal(t, 200, r.status, "%s: %s", u, r.body)
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		bodies = append(bodies, string(r.body))
		sources = append(sources, r.header.Get("X-Kiln-Source"))
		c := r.header.Get("X-Next-Cursor")
		cursors = append(cursors, c+" "+r.header.Get("Link"))
		if c == "" {
			return bodies, cursors, sources
		}
		u = first + "&cursor=" + url.QueryEscape(c)
	}
	t.Fatal("pagination did not end")
	return nil, nil, nil
}

// TestListEventsFromCacheLikeMongoDB: the same walks answered by MongoDB
// (cache not complete yet) and then cache-first give the same pages; the
// cache holds the newest 30 of 60 events, so walks cross into MongoDB.
func TestListEventsFromCacheLikeMongoDB(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	evs := fixture(60, baseMs)
	_, err := h.history.Apply(ctx, evs)
	require.NoError(t, err)
	_, err = h.recent.Apply(ctx, evs, time.Now())
	require.NoError(t, err)

	queries := []string{"/events?limit=7", "/events?type=a&type=c&limit=4", "/events?userId=u1&limit=5",
		"/events?userId=u0&type=b&limit=3", "/events?from=1767225620000&to=1767225629000&limit=4",
		"/events?limit=20", "/events?type=b&from=1767225600000&limit=2"}
	type answer struct{ bodies, cursors, sources []string }
	before := map[string]answer{}
	for _, q := range queries {
		b, c, s := walk(t, h.url+q)
		for _, src := range s {
			require.Equal(t, "mongodb", src, "an incomplete cache is not used")
		}
		before[q] = answer{b, c, s}
	}
	epoch, _, err := h.recent.Start(ctx, time.Now())
	require.NoError(t, err)
	ok, err := h.recent.MarkComplete(ctx, epoch)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, h.recent.SetPositions(ctx, 60, 60))

	crossed := 0
	for _, q := range queries {
		b, c, s := walk(t, h.url+q)
		require.Equal(t, before[q].bodies, b, q)
		require.Equal(t, before[q].cursors, c, q)
		require.Equal(t, "cache", s[0], "%s: the first page is within the cache", q)
		for i := 1; i < len(s); i++ {
			if s[i-1] == "cache" && s[i] == "mongodb" {
				crossed++
			}
		}
	}
	require.Positive(t, crossed, "some walk crosses from the cache into MongoDB")

	// Many clients asking for the same first pages at once (identical
	// queries in flight share one cache read) each get the page a lone
	// request gets, with its cursor.
	errs := make(chan error, len(queries)*16)
	var wg sync.WaitGroup
	for _, q := range queries {
		for range 16 {
			wg.Go(func() {
				resp, err := http.Get(h.url + q)
				if err != nil {
					errs <- err
					return
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				switch {
				case err != nil:
					errs <- err
				case string(body) != before[q].bodies[0]:
					errs <- fmt.Errorf("%s: %s, alone %s", q, body, before[q].bodies[0])
				case resp.Header.Get("X-Next-Cursor")+" "+resp.Header.Get("Link") != before[q].cursors[0]:
					errs <- fmt.Errorf("%s: cursor %q, alone %q", q, resp.Header.Get("X-Next-Cursor"), before[q].cursors[0])
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	r := get(t, h.url+"/events/e059")
	require.Equal(t, 200, r.status)
	require.Empty(t, r.header.Get("X-Kiln-Source"), "GET /events/{id} stays a MongoDB point lookup")
}
