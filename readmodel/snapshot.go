package readmodel

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// TypeCount is one entry of the compat byType list.
type TypeCount struct {
	Type  string `json:"_id"`
	Count int64  `json:"count"`
}

// MinutePoint is one minute of the per-minute series.
type MinutePoint struct {
	Minute int64            `json:"minute"` // Unix ms of the minute's start
	Total  int64            `json:"total"`
	ByType map[string]int64 `json:"byType"`
}

// Metrics is the GET /metrics payload: the compat fields first, then Kiln's.
type Metrics struct {
	// TotalEventsLastMinute counts events whose timestamp is within the 60
	// seconds up to now (compat).
	TotalEventsLastMinute int64 `json:"totalEventsLastMinute"`
	// ByType splits TotalEventsLastMinute by event type, largest first (compat).
	ByType []TypeCount `json:"byType"`
	// Series is the last hour, one point per minute, oldest first.
	Series []MinutePoint `json:"series"`
	// Totals counts every event ever projected, by type.
	Totals map[string]int64 `json:"totals"`
	Total  int64            `json:"total"`
	// AsOfSeq is the stream sequence up to which every event is counted.
	AsOfSeq uint64 `json:"asOfSeq"`
	// Now is the server time the window ends at (Unix ms).
	Now int64 `json:"now"`
}

// Snapshot reads the metrics for the minute and hour up to now.
func (c *Counters) Snapshot(ctx context.Context, now time.Time) (Metrics, error) {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return Metrics{}, err
	}
	nowSec := now.Unix()
	thisMinute := nowSec - nowSec%60
	pipe := c.rdb.Pipeline()
	secs := make([]*redis.MapStringStringCmd, 60)
	for i := range secs {
		secs[i] = pipe.HGetAll(ctx, p+"s:"+strconv.FormatInt(nowSec-int64(i), 10))
	}
	mins := make([]*redis.MapStringStringCmd, 60)
	for i := range mins {
		mins[i] = pipe.HGetAll(ctx, p+"m:"+strconv.FormatInt(thisMinute-int64(59-i)*60, 10))
	}
	all := pipe.HGetAll(ctx, p+"all")
	checkpoint := pipe.HGet(ctx, p+"meta", "checkpoint")
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return Metrics{}, fmt.Errorf("read counters: %w", err)
	}

	m := Metrics{Now: now.UnixMilli(), Totals: map[string]int64{}, ByType: []TypeCount{}}
	lastMinute := map[string]int64{}
	for _, cmd := range secs {
		for typ, n := range counts(cmd.Val()) {
			if typ == totalField {
				m.TotalEventsLastMinute += n
				continue
			}
			lastMinute[typ] += n
		}
	}
	for typ, n := range lastMinute {
		m.ByType = append(m.ByType, TypeCount{Type: typ, Count: n})
	}
	slices.SortFunc(m.ByType, func(a, b TypeCount) int {
		if a.Count != b.Count {
			return int(b.Count - a.Count)
		}
		return strings.Compare(a.Type, b.Type)
	})
	m.Series = make([]MinutePoint, len(mins))
	for i, cmd := range mins {
		pt := MinutePoint{Minute: (thisMinute - int64(59-i)*60) * 1000, ByType: map[string]int64{}}
		for typ, n := range counts(cmd.Val()) {
			if typ == totalField {
				pt.Total = n
				continue
			}
			pt.ByType[typ] = n
		}
		m.Series[i] = pt
	}
	for typ, n := range counts(all.Val()) {
		if typ == totalField {
			m.Total = n
			continue
		}
		m.Totals[typ] = n
	}
	m.AsOfSeq, _ = strconv.ParseUint(checkpoint.Val(), 10, 64)
	return m, nil
}

func counts(h map[string]string) map[string]int64 {
	out := make(map[string]int64, len(h))
	for k, v := range h {
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil {
			out[k] = n
		}
	}
	return out
}

// Total reads the number of events ever counted: the total of Snapshot,
// in one round trip.
func (c *Counters) Total(ctx context.Context) (int64, error) {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return 0, err
	}
	n, err := c.rdb.HGet(ctx, p+"all", totalField).Int64()
	if err == redis.Nil {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the events total: %w", err)
	}
	return n, nil
}
