package readmodel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kilnhq/kiln/schemas"
)

// CountersBuild is a generation's counters built in memory from events in
// stream order, with Apply's rules — each sequence counted once, second
// and minute buckets only within retention, a bucket's expiry bounded by
// the accepted clock skew — and written to Redis at once by Write, with
// plain pipelined commands that set every value (a retried Write writes
// the same). A full replay counts every event of the stream; sending each
// to Apply's script cost Redis ~3.4 µs an event and the replaying process
// the script's arguments, where a count in memory costs a map increment.
//
// The counters under the build's prefix must be empty and written by no
// one else until Write returns (a new generation's, before the switch).
type CountersBuild struct {
	c    *Counters
	all  map[string]int64
	secs map[int64]map[string]int64 // second → type → count
	mins map[int64]map[string]int64 // minute (its first second) → type → count
	// seen holds each seen bitmap by block (sequence div seenBlock), as
	// BITFIELD's u1 lays it out: bit 0 is the first byte's highest.
	seen map[uint64][]byte
	// used is how many bytes of each bitmap hold a bit (Redis grows a
	// bitmap to its last bit set; Write does the same).
	used map[uint64]int
}

// NewBuild starts an in-memory build of the counters Write will fill.
func (c *Counters) NewBuild() *CountersBuild {
	return &CountersBuild{c: c, all: map[string]int64{}, secs: map[int64]map[string]int64{},
		mins: map[int64]map[string]int64{}, seen: map[uint64][]byte{}, used: map[uint64]int{}}
}

// Add counts events (with Seq set) at now; an event whose sequence was
// added before (a retried batch) counts nothing.
func (b *CountersBuild) Add(events []schemas.Event, now time.Time) {
	w := b.c.window(now)
	for _, ev := range events {
		block, bit := ev.Seq/seenBlock, ev.Seq%seenBlock
		bm := b.seen[block]
		if bm == nil {
			bm = make([]byte, seenBlock/8)
			b.seen[block] = bm
		}
		at, mask := bit/8, byte(0x80)>>(bit%8)
		if bm[at]&mask != 0 {
			continue
		}
		bm[at] |= mask
		b.used[block] = max(b.used[block], int(at)+1)
		b.all[ev.EventType]++
		sec, minute := buckets(ev.Timestamp)
		if w.keepsSecond(sec) {
			addCount(b.secs, sec, ev.EventType)
		}
		if w.keepsMinute(minute) {
			addCount(b.mins, minute, ev.EventType)
		}
	}
}

func addCount(buckets map[int64]map[string]int64, at int64, typ string) {
	counts := buckets[at]
	if counts == nil {
		counts = map[string]int64{}
		buckets[at] = counts
	}
	counts[typ]++
}

// Write stores the build in the counters under its prefix at now: the
// same keys, values and expiries Apply's script would have left (the
// buckets past retention at now left out), the epoch and the master that
// holds them (failover.go) included. It fails if another master holds
// the counters than before the writes: they may be lost, and the counters
// must be emptied and built again.
func (b *CountersBuild) Write(ctx context.Context, now time.Time) error {
	p, err := b.c.keyPrefix(ctx)
	if err != nil {
		return err
	}
	master, err := buildMasterScript.Run(ctx, b.c.rdb, []string{p + "meta"}).Text()
	if err != nil {
		return fmt.Errorf("read the redis master of the counters: %w", err)
	}
	w := b.c.window(now)
	skew := int64(b.c.opts.MaxFutureSkew / time.Second)
	pipe := b.c.rdb.Pipeline()
	hset(ctx, pipe, p+"all", b.all)
	for _, sec := range slices.Sorted(maps.Keys(b.secs)) {
		if w.keepsSecond(sec) {
			key := p + "s:" + strconv.FormatInt(sec, 10)
			hset(ctx, pipe, key, b.secs[sec])
			pipe.ExpireAt(ctx, key, time.Unix(min(sec+w.secTTL, w.now+w.secTTL+skew), 0))
		}
	}
	for _, minute := range slices.Sorted(maps.Keys(b.mins)) {
		if w.keepsMinute(minute) {
			key := p + "m:" + strconv.FormatInt(minute, 10)
			hset(ctx, pipe, key, b.mins[minute])
			pipe.ExpireAt(ctx, key, time.Unix(min(minute+60+w.minTTL, w.now+w.minTTL+skew), 0))
		}
	}
	for _, block := range slices.Sorted(maps.Keys(b.seen)) {
		pipe.Set(ctx, p+"seen:"+strconv.FormatUint(block, 10), b.seen[block][:b.used[block]], seenRetention)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("write the counters built: %w", err)
	}
	ok, err := countersBuiltScript.Run(ctx, b.c.rdb, []string{p + "meta"}, master, epochOf(now)).Bool()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("record the counters built: %w", err)
	}
	if !ok {
		return errors.New("write counters: the redis master changed during the write (a failover: the writes may be lost)")
	}
	return nil
}

// hset queues one HSET of counts and their total, as the script's flush
// leaves them.
func hset(ctx context.Context, pipe redis.Pipeliner, key string, counts map[string]int64) {
	if len(counts) == 0 {
		return
	}
	args := make([]any, 0, 2*len(counts)+2)
	var total int64
	for _, typ := range slices.Sorted(maps.Keys(counts)) {
		args = append(args, typ, counts[typ])
		total += counts[typ]
	}
	pipe.HSet(ctx, key, append(args, totalField, total)...)
}

// countersBuiltScript starts the counters' epoch (as the script's first
// call does) and records the master that holds the build's writes
// (ARGV[1], read before them), unless another master holds them now.
var countersBuiltScript = redis.NewScript(replidLua + `
if replid() ~= ARGV[1] then return 0 end
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[2])
redis.call('HSET', KEYS[1], 'replid', ARGV[1])
return 1`)
