package readmodel

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
)

// RecentPage is a GET /events page answered by the recent-events cache.
type RecentPage struct {
	// Body is the JSON array, byte for byte what History.Find's events
	// encode to.
	Body []byte
	// Next is the cursor of the next page (nil on the last page).
	Next *Cursor
}

// maxPositionTimestamp is the largest timestamp a position holds (12 hex
// digits); the envelope's largest (year 9999) is below it.
const maxPositionTimestamp = 1<<48 - 1

// Find answers q from the cache when its whole answer lies in what the
// cache holds, completely and caught up with MongoDB; ok is false (with the
// reason) when MongoDB must answer instead. The order, paging and JSON are
// those of History.Find: a cursor from either store continues in the other.
func (r *Recent) Find(ctx context.Context, q Query) (page RecentPage, ok bool, reason string, err error) {
	if len(q.TypePatterns) > 0 {
		return page, false, "type patterns", nil
	}
	if q.After != nil && (q.After.Timestamp < 0 || q.After.Seq < 0 || q.After.Timestamp > maxPositionTimestamp) {
		return page, false, "cursor out of range", nil
	}
	p, err := r.keyPrefix(ctx)
	if err != nil {
		return page, false, "", err
	}
	lo, hi := "-", "+"
	if q.From > 0 {
		lo = "[" + position(q.From, 0)
	}
	if q.To > 0 {
		hi = "[" + position(q.To, math.MaxUint64)
	}
	if q.After != nil {
		if after := position(q.After.Timestamp, uint64(q.After.Seq)); hi == "+" || after <= hi[1:] {
			hi = "(" + after
		}
	}
	types := slices.Clone(q.Types)
	slices.Sort(types)
	types = slices.Compact(types)
	args := make([]any, 0, 5+len(types))
	args = append(args, q.Limit, lo, hi, q.UserID, r.opts.ScanBudget)
	for _, t := range types {
		args = append(args, t)
	}
	// The index keys the script reads (see recent_query.lua).
	keys := []string{p + "meta", p + "tu", p + "ev", p + "tb"}
	switch {
	case len(types) == 0 && q.UserID == "":
		keys = append(keys, p+"all")
	case len(types) == 0 || q.UserID != "":
		keys = append(keys, p+"u:"+q.UserID)
	default:
		for _, t := range types {
			keys = append(keys, p+"t:"+t)
		}
	}
	res, err := r.query.Run(ctx, r.rdb, keys, args...).Slice()
	if err != nil {
		return page, false, "", fmt.Errorf("query recent cache: %w", err)
	}
	if len(res) < 2 {
		return page, false, "", fmt.Errorf("query recent cache: short reply")
	}
	if n, _ := res[0].(int64); n != 1 {
		reason, _ := res[1].(string)
		return page, false, reason, nil
	}
	if next, _ := res[1].(string); next != "" {
		c, err := parsePosition(next)
		if err != nil {
			return page, false, "", err
		}
		page.Next = &c
	}
	size := 2
	for _, d := range res[2:] {
		s, _ := d.(string)
		size += len(s) + 1
	}
	var b bytes.Buffer
	b.Grow(size)
	b.WriteByte('[')
	for i, d := range res[2:] {
		if i > 0 {
			b.WriteByte(',')
		}
		s, _ := d.(string)
		b.WriteString(s)
	}
	b.WriteByte(']')
	page.Body = b.Bytes()
	return page, true, "", nil
}
