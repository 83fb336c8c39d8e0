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

//go:embed counters.lua
var countersLua string

// CountersOptions configure the Redis counters.
type CountersOptions struct {
	// Prefix namespaces every key (PrefixFor(gen): "kiln:{g0}:" for
	// generation 0). A prefix without a hash tag is put in braces, so that
	// all the counters' keys share a Redis Cluster slot.
	Prefix string
	// MinuteRetention is how long per-minute buckets are kept (default 24h).
	MinuteRetention time.Duration
	// MaxFutureSkew bounds how far ahead of now a bucket's expiry may be
	// pushed by a future timestamp: a bucket expires at its minute plus
	// retention, but never later than now + retention + MaxFutureSkew
	// (default 24h, ingest's INGEST_MAX_FUTURE_SKEW default).
	MaxFutureSkew time.Duration
	// MarkRebuildWhenFresh starts counters that do not exist (a new or
	// flushed Redis) with a rebuild pending whose target is not set yet
	// (Rebuild.UpTo 0), in the same step as their epoch: the live
	// projection's counters, which must be rebuilt from the stream then.
	// A replay into a new generation leaves it off.
	MarkRebuildWhenFresh bool
	// Durability makes each Apply wait for replicas (failover.go).
	Durability Durability
}

// DefaultPrefix is the key prefix of counters generation 0.
const DefaultPrefix = keyNamespace + "{g0}:"

// keyNamespace starts every key Kiln writes to Redis.
const keyNamespace = "kiln:"

const (
	secondRetention = 3 * time.Minute
	seenRetention   = 7 * 24 * time.Hour
	totalField      = "_total"
	seenBlock       = 1 << 20 // sequences per seen bitmap (128 KiB)
)

// Counters are Kiln's metric counters in Redis: per-type and total counts in
// per-second buckets (for the last-minute window), per-minute buckets (for
// series) and all-time totals, by event timestamp.
//
// Exactly once: a bitmap keyed by stream sequence (one bit per event, 128 KiB
// per million events) is tested-and-set in the same Lua script that
// increments the counts, so redelivery, a crash between write and ack, two
// projectors and a rebuild overlapping live traffic all count each event once.
type Counters struct {
	rdb    redis.UniversalClient
	opts   CountersOptions
	script *redis.Script
	setMax *redis.Script
	lease  *redis.Script
	// endRebuild clears a rebuild mark if the epoch is unchanged.
	endRebuild *redis.Script
	follow     bool // resolve the prefix from the generation pointer per call
}

// NewCounters returns the counters stored in rdb.
func NewCounters(rdb redis.UniversalClient, o CountersOptions) *Counters {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.MinuteRetention == 0 {
		o.MinuteRetention = 24 * time.Hour
	}
	if o.MaxFutureSkew == 0 {
		o.MaxFutureSkew = 24 * time.Hour
	}
	return &Counters{rdb: rdb, opts: o, script: redis.NewScript(replidLua + countersLua), setMax: redis.NewScript(setMaxLua), lease: redis.NewScript(leaseLua), endRebuild: redis.NewScript(endRebuildLua)}
}

// FollowCounters returns the live counters: every call reads the
// generation pointer (kiln:generation) and uses that generation's keys.
func FollowCounters(rdb redis.UniversalClient, o CountersOptions) *Counters {
	c := NewCounters(rdb, o)
	c.follow = true
	return c
}

// keyPrefix resolves the key prefix this call works on.
func (c *Counters) keyPrefix(ctx context.Context) (string, error) {
	if !c.follow {
		return tagged(c.opts.Prefix), nil
	}
	gen, err := CountersGeneration(ctx, c.rdb)
	if err != nil {
		return "", err
	}
	return PrefixFor(gen), nil
}

// CountResult says what a counters write did.
type CountResult struct {
	Applied int  // events counted now (the rest were counted before)
	Fresh   bool // the counters did not exist: Redis is new or was flushed
}

// Apply counts events (with Seq set).
func (c *Counters) Apply(ctx context.Context, events []schemas.Event, now time.Time) (CountResult, error) {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return CountResult{}, err
	}
	// Every key the script touches is in KEYS: the meta hash, the totals,
	// then each event's seen bitmap and second and minute buckets, which
	// the event's arguments point at by their index in KEYS.
	keys := newKeyList(p+"meta", p+"all")
	w := c.window(now)
	args := make([]any, 0, 7+6*len(events))
	args = append(args, w.now, w.secTTL, w.minTTL, int64(seenRetention/time.Second), epochOf(now),
		int64(c.opts.MaxFutureSkew/time.Second), c.markFlag())
	// A bucket the script will not write (its second or minute is past
	// retention at now: the script's own test) is passed as index 0. A
	// replay's events are mostly older than the second buckets' three
	// minutes, and a second bucket per event in KEYS cost both sides more
	// than counting the event.
	for _, ev := range events {
		sec, minute := buckets(ev.Timestamp)
		secKey, minKey := 0, 0
		if w.keepsSecond(sec) {
			secKey = keys.add(p + "s:" + strconv.FormatInt(sec, 10))
		}
		if w.keepsMinute(minute) {
			minKey = keys.add(p + "m:" + strconv.FormatInt(minute, 10))
		}
		args = append(args, ev.Seq%seenBlock, ev.EventType, ev.Timestamp,
			keys.add(p+"seen:"+strconv.FormatUint(ev.Seq/seenBlock, 10)), secKey, minKey)
	}
	res, err := runDurably(ctx, c.rdb, c.opts.Durability, c.script, keys.keys, args...).Int64Slice()
	if err != nil {
		return CountResult{}, fmt.Errorf("count %d events: %w", len(events), err)
	}
	return CountResult{Applied: int(res[0]), Fresh: res[1] == 1}, nil
}

// window is the counters' retention at a moment, in seconds: which second
// and minute buckets an event still counts in (the script's own tests).
type window struct{ now, secTTL, minTTL int64 }

func (c *Counters) window(now time.Time) window {
	return window{now: now.Unix(), secTTL: int64(secondRetention / time.Second), minTTL: int64(c.opts.MinuteRetention / time.Second)}
}

// keepsSecond reports whether the second bucket sec is within retention.
func (w window) keepsSecond(sec int64) bool { return sec+w.secTTL > w.now }

// keepsMinute reports whether the minute bucket starting at second minute
// is within retention.
func (w window) keepsMinute(minute int64) bool { return minute+60+w.minTTL > w.now }

// buckets returns the second and the minute (its first second) of a
// timestamp in milliseconds, rounded down as the script does.
func buckets(ts int64) (sec, minute int64) {
	sec = floorDiv(ts, 1000)
	return sec, sec - (sec - floorDiv(sec, 60)*60)
}

// Started reports whether the counters exist, creating their epoch marker
// (with MarkRebuildWhenFresh, and a pending rebuild, in the same step) if
// not. false means Redis is new or was flushed: the counters must be
// rebuilt from the stream.
func (c *Counters) Started(ctx context.Context, now time.Time) (bool, error) {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return false, err
	}
	created, err := startScript.Run(ctx, c.rdb, []string{p + "meta"}, epochOf(now), c.markFlag()).Int()
	if err != nil {
		return false, fmt.Errorf("check counters epoch: %w", err)
	}
	return created == 0, nil
}

// startScript creates the counters' epoch; counters started here hold no
// acknowledged event yet, so this master verified them (failover.go).
var startScript = redis.NewScript(replidLua + `
local created = redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
if created == 1 then
  redis.call('HSET', KEYS[1], 'replid', replid())
  if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'rebuildUpTo', 0, 'checkpoint', 0) end
end
return created`)

func (c *Counters) markFlag() string {
	if c.opts.MarkRebuildWhenFresh {
		return "1"
	}
	return "0"
}

// epochOf names counters started at now; a flush and restart within the
// same nanosecond is not a concern.
func epochOf(now time.Time) string {
	return strconv.FormatInt(now.UnixNano(), 10)
}

// SetCheckpoint records seq as the last contiguous sequence applied, never
// moving it backwards, on the master that verified the counters only (a
// replay claims its shadow's progress with it at the switch).
func (c *Counters) SetCheckpoint(ctx context.Context, seq uint64) error {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return err
	}
	err = c.setMax.Run(ctx, c.rdb, []string{p + "meta"}, "checkpoint", seq).Err()
	if err != nil {
		return fmt.Errorf("set counters checkpoint: %w", err)
	}
	return nil
}

// setMaxLua, like setLiveCheckpointScript, writes nothing on a master that
// has not verified the counters (failover.go): a replay's shadow counters
// whose master failed over during the replay may lack events below seq;
// their checkpoint stays where it was, and after the switch the live
// projector verifies them from there.
const setMaxLua = replidLua + `
if redis.call('HGET', KEYS[1], 'replid') ~= replid() then return 0 end
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0`

// Checkpoint returns the last contiguous sequence applied (0 if none).
func (c *Counters) Checkpoint(ctx context.Context) (uint64, error) {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return 0, err
	}
	v, err := c.rdb.HGet(ctx, p+"meta", "checkpoint").Result()
	if err == redis.Nil {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read counters checkpoint: %w", err)
	}
	return strconv.ParseUint(v, 10, 64)
}
