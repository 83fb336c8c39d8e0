package readmodel

import (
	"context"
	_ "embed"
	"errors"
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
	// lives and switches with the counters generation, under
	// RecentPrefixFor(Prefix): a slot of its own).
	Prefix string
	// MaxEvents is how many events the cache keeps (the newest by
	// timestamp, then sequence).
	MaxEvents int
	// ScanBudget bounds how many cached positions one query may read to
	// filter by type and userId together (default 20,000).
	ScanBudget int
	// Durability makes each Apply wait for replicas (failover.go).
	Durability Durability
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
	return &Recent{rdb: rdb, opts: o, apply: redis.NewScript(replidLua + trimmedLua + recentApplyLua), query: redis.NewScript(replidLua + trimmedLua + recentQueryLua),
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
		return RecentPrefixFor(r.opts.Prefix), nil
	}
	gen, err := CountersGeneration(ctx, r.rdb)
	if err != nil {
		return "", err
	}
	return RecentPrefixFor(PrefixFor(gen)), nil
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
	var names []string // the events' index keys, each once
	seen := map[string]bool{}
	for _, ev := range events {
		for _, name := range []string{"t:" + ev.EventType, "u:" + ev.UserID} {
			if !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	tail := make([]any, 0, 5*len(events))
	for _, ev := range events {
		b, err := RenderEvent(ev)
		if err != nil {
			return RecentResult{}, err
		}
		tail = append(tail, position(ev.Timestamp, ev.Seq), ev.EventType, ev.UserID, ev.ID, b)
	}
	var out RecentResult
	// The script trims as far as the index keys passed allow and names
	// the ones it lacked: they are added to those passed in a call with no
	// events, which trims on (one more round but for a concurrent writer:
	// each round names every index key the victims it saw need).
	for round := 0; ; round++ {
		keys := []string{p + "meta", p + "ids", p + "all", p + "ev", p + "tu", p + "tb"}
		args := make([]any, 0, 3+len(names)+len(tail))
		args = append(args, r.opts.MaxEvents, epochOf(now), len(names))
		for _, name := range names {
			keys = append(keys, p+name)
			args = append(args, name)
		}
		args = append(args, tail...)
		res, err := runDurably(ctx, r.rdb, r.opts.Durability, r.apply, keys, args...).Slice()
		if err == nil && len(res) < 2 {
			err = errors.New("short reply")
		}
		if err != nil {
			return RecentResult{}, fmt.Errorf("cache %d recent events: %w", len(events), err)
		}
		added, _ := res[0].(int64)
		fresh, _ := res[1].(int64)
		out.Added += int(added)
		out.Fresh = out.Fresh || fresh == 1
		if len(res) == 2 || round == maxTrimRounds {
			return out, nil
		}
		tail = nil // the next round only trims, with the keys named added
		for _, m := range res[2:] {
			if name, _ := m.(string); !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
}

// maxTrimRounds bounds the calls with no events one Apply makes to finish
// trimming (only a concurrent writer makes a round name new keys); the
// next Apply trims what is left.
const maxTrimRounds = 4
