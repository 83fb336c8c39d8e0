package httpapi

import (
	"context"
	"strconv"

	"golang.org/x/sync/singleflight"

	"github.com/kilnhq/kiln/readmodel"
)

// recentReads shares one recent-cache read among the identical GET /events
// queries in flight at the same moment: a dashboard open in many browsers,
// or many clients polling one page, cost one Redis call, not one each. A
// request that joins a read in flight gets that read's answer, which began
// at most one Redis round trip before its own would have: the cache is
// already behind the stream by the projector's lag, so nothing a client
// could tell apart. Queries differing in any parameter are not shared.
type recentReads struct {
	flights singleflight.Group
}

// recentAnswer is one Recent.Find's answer.
type recentAnswer struct {
	page readmodel.RecentPage
	ok   bool
}

// find is recent.Find(ctx, q), shared with the identical queries in
// flight. The read runs on a context of its own (storeTimeout), so a
// client that leaves does not fail the others waiting on it.
func (r *recentReads) find(ctx context.Context, recent *readmodel.Recent, q readmodel.Query) (readmodel.RecentPage, bool, error) {
	ch := r.flights.DoChan(queryKey(q), func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		defer cancel()
		page, ok, _, err := recent.Find(fctx, q)
		return recentAnswer{page: page, ok: ok}, err
	})
	select {
	case res := <-ch:
		a, _ := res.Val.(recentAnswer)
		return a.page, a.ok, res.Err
	case <-ctx.Done():
		return readmodel.RecentPage{}, false, ctx.Err()
	}
}

// queryKey names q exactly: two queries share a key only when every field
// is equal. Each list is prefixed by its length and each string by its
// size, so no value can pass for another field.
func queryKey(q readmodel.Query) string {
	b := make([]byte, 0, 96)
	str := func(s string) {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	num := func(n int64) {
		b = strconv.AppendInt(b, n, 10)
		b = append(b, ',')
	}
	for _, list := range [][]string{q.Types, q.TypePatterns} {
		num(int64(len(list)))
		for _, s := range list {
			str(s)
		}
	}
	str(q.UserID)
	num(q.From)
	num(q.To)
	num(int64(q.Limit))
	if q.After != nil {
		num(q.After.Timestamp)
		num(q.After.Seq)
	}
	return string(b)
}
