package readmodel

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kilnhq/kiln/schemas"
)

//go:embed recent_apply.lua
var recentApplyLua string

//go:embed recent_query.lua
var recentQueryLua string

// DefaultRecentMaxEvents bounds the recent-events cache by default: about
// 100 MB of Redis memory for events of a few hundred bytes.
const DefaultRecentMaxEvents = 100_000

// RecentOptions configure the recent-events cache.
type RecentOptions struct {
	// Prefix namespaces the keys (a counters generation prefix; the cache
	// lives and switches with the counters generation).
	Prefix string
	// MaxEvents is how many events the cache keeps (the newest by
	// timestamp, then sequence).
	MaxEvents int
	// ScanBudget bounds how many cached positions one query may read to
	// filter by type and userId together (default 20,000).
	ScanBudget int
}

// Recent is the recent-events cache in Redis: the newest events, rendered
// as GET /events renders them, indexed by position (timestamp, seq) overall,
// per type and per userId, so that every GET /events query shape whose whole
// answer lies in the newest MaxEvents events is answered by one script call.
//
// The cache knows its coverage: it holds every projected event above its
// floor (the highest position it trimmed), it is complete once rebuilt from
// the stream after Redis was new or flushed, and the projector records its
// consumer's ack floor beside the history's so that a cache behind MongoDB
// is not used.
type Recent struct {
	rdb    redis.UniversalClient
	opts   RecentOptions
	follow bool
	apply  *redis.Script
	query  *redis.Script
	mark   *redis.Script
	lease  *redis.Script
}

// NewRecent returns the cache under o.Prefix.
func NewRecent(rdb redis.UniversalClient, o RecentOptions) *Recent {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = DefaultRecentMaxEvents
	}
	if o.ScanBudget <= 0 {
		o.ScanBudget = 20_000
	}
	return &Recent{rdb: rdb, opts: o, apply: redis.NewScript(recentApplyLua), query: redis.NewScript(recentQueryLua),
		mark: redis.NewScript(markCompleteLua), lease: redis.NewScript(leaseLua)}
}

// FollowRecent returns the live cache: every call resolves the counters
// generation pointer, as FollowCounters does.
func FollowRecent(rdb redis.UniversalClient, o RecentOptions) *Recent {
	r := NewRecent(rdb, o)
	r.follow = true
	return r
}

func (r *Recent) keyPrefix(ctx context.Context) (string, error) {
	if !r.follow {
		return r.opts.Prefix, nil
	}
	gen, err := CountersGeneration(ctx, r.rdb)
	if err != nil {
		return "", err
	}
	return PrefixFor(gen), nil
}

// position is an event's place in the newest-first order as a fixed-width
// string whose byte order is the (timestamp, seq) order.
func position(ts int64, seq uint64) string {
	return fmt.Sprintf("%012x%016x", uint64(ts), seq)
}

// parsePosition is the inverse of position.
func parsePosition(s string) (Cursor, error) {
	if len(s) != 28 {
		return Cursor{}, fmt.Errorf("bad cache position %q", s)
	}
	ts, err1 := strconv.ParseUint(s[:12], 16, 64)
	seq, err2 := strconv.ParseUint(s[12:], 16, 64)
	if err1 != nil || err2 != nil {
		return Cursor{}, fmt.Errorf("bad cache position %q", s)
	}
	return Cursor{Timestamp: int64(ts), Seq: int64(seq)}, nil
}

// RecentResult says what a cache write did.
type RecentResult struct {
	Added int  // events new to the cache
	Fresh bool // the cache did not exist: Redis is new or was flushed
}

// Apply adds events (with Seq set) to the cache and trims it to MaxEvents.
func (r *Recent) Apply(ctx context.Context, events []schemas.Event, now time.Time) (RecentResult, error) {
	p, err := r.keyPrefix(ctx)
	if err != nil {
		return RecentResult{}, err
	}
	args := make([]any, 0, 3+5*len(events))
	args = append(args, p, r.opts.MaxEvents, epochOf(now))
	for _, ev := range events {
		b, err := RenderEvent(ev)
		if err != nil {
			return RecentResult{}, err
		}
		args = append(args, position(ev.Timestamp, ev.Seq), ev.EventType, ev.UserID, ev.ID, b)
	}
	res, err := r.apply.Run(ctx, r.rdb, nil, args...).Int64Slice()
	if err != nil {
		return RecentResult{}, fmt.Errorf("cache %d recent events: %w", len(events), err)
	}
	return RecentResult{Added: int(res[0]), Fresh: res[1] == 1}, nil
}
