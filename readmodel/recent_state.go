package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RecentState is the cache's bookkeeping (its meta hash).
type RecentState struct {
	// Epoch names this incarnation of the cache ("" when Redis holds none).
	Epoch string
	// Complete: the cache holds every event of the stream above its floor
	// (it was rebuilt from the stream, or started with it).
	Complete bool
	// Whole: the complete cache was built from a stream that never lost
	// an event (MarkWhole), so a user or type whose events were never
	// trimmed has all of them in it (recent_trimmed.go).
	Whole bool
	// Checkpoint is the recent projection's ack floor, HistoryCheckpoint
	// the history projection's. The cache is used only while Checkpoint ≥
	// HistoryCheckpoint: it then holds every event MongoDB holds up to its
	// checkpoint. (The history's delivered sequence would be stricter but
	// useless: it runs ahead by the consumer's whole ack window.)
	Checkpoint, HistoryCheckpoint uint64
	// Floor is the newest position trimmed ("" if none): the cache is
	// complete only above it.
	Floor string
	// Count is how many events the cache holds.
	Count int64
}

// Oldest is the position the cache is complete from (exclusive): a cursor
// at or below it is answered by MongoDB. Zero when nothing was trimmed.
func (s RecentState) Oldest() Cursor {
	c, _ := parsePosition(s.Floor)
	return c
}

// State reads the cache's bookkeeping.
func (r *Recent) State(ctx context.Context) (RecentState, error) {
	p, err := r.keyPrefix(ctx)
	if err != nil {
		return RecentState{}, err
	}
	pipe := r.rdb.Pipeline()
	m := pipe.HMGet(ctx, p+"meta", "epoch", "complete", "checkpoint", "historyCheckpoint", "floor", "whole")
	n := pipe.ZCard(ctx, p+"all")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return RecentState{}, fmt.Errorf("read recent cache state: %w", err)
	}
	str := func(i int) string { s, _ := m.Val()[i].(string); return s }
	s := RecentState{Epoch: str(0), Floor: str(4), Count: n.Val()}
	s.Complete = s.Epoch != "" && str(1) == s.Epoch
	s.Whole = s.Complete && str(5) == s.Epoch
	s.Checkpoint, _ = strconv.ParseUint(str(2), 10, 64)
	s.HistoryCheckpoint, _ = strconv.ParseUint(str(3), 10, 64)
	return s, nil
}

// Start creates the cache's epoch if it has none and returns the epoch;
// created is true when it did (Redis is new or was flushed).
func (r *Recent) Start(ctx context.Context, now time.Time) (epoch string, created bool, err error) {
	p, err := r.keyPrefix(ctx)
	if err != nil {
		return "", false, err
	}
	if created, err = recentStartScript.Run(ctx, r.rdb, []string{p + "meta"}, epochOf(now)).Bool(); err != nil {
		return "", false, fmt.Errorf("start recent cache: %w", err)
	}
	if epoch, err = r.rdb.HGet(ctx, p+"meta", "epoch").Result(); err != nil {
		return "", false, fmt.Errorf("start recent cache: %w", err)
	}
	return epoch, created, nil
}

// recentStartScript creates the cache's epoch; a cache started here holds
// no acknowledged event yet, so this master verified it (failover.go) —
// unless a build was written first (RecentBuild.Write): the master it
// recorded holds its events, and if that is not this one, the cache is
// not verified here (MarkComplete then leaves it incomplete).
var recentStartScript = redis.NewScript(replidLua + `
local created = redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
if created == 1 then redis.call('HSETNX', KEYS[1], 'replid', replid()) end
return created`)

// MarkComplete records that the cache of epoch holds every event of the
// stream above its floor. false: the cache was flushed meanwhile (another
// epoch), or the master holding it has not verified it (failover.go), and
// it stays incomplete.
func (r *Recent) MarkComplete(ctx context.Context, epoch string) (bool, error) {
	return r.MarkCompleteOn(ctx, epoch, "")
}

// MarkCompleteOn is MarkComplete for a rebuild that ran while the master
// whose replication ID is replid (MasterCheck.Replid, read before the
// rebuild started) held the cache: false if another master holds it now,
// since the rebuild's writes to the one before may be lost. (Events the
// live projection acked on an earlier master are the verification's job;
// the cache answers no query until then.) "" asks instead that the master
// holding the cache verified it.
func (r *Recent) MarkCompleteOn(ctx context.Context, epoch, replid string) (bool, error) {
	p, err := r.keyPrefix(ctx)
	if err != nil {
		return false, err
	}
	ok, err := r.mark.Run(ctx, r.rdb, []string{p + "meta"}, epoch, replid).Bool()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("mark recent cache complete: %w", err)
	}
	return ok, nil
}

const markCompleteLua = replidLua + `
local cur = replid()
if ARGV[2] ~= '' then
  if ARGV[2] ~= cur then return 0 end
elseif redis.call('HGET', KEYS[1], 'replid') ~= cur then return 0 end
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'complete', ARGV[1])
  return 1
end
return 0`

// MarkWhole records that the complete cache of epoch was built from a
// stream that never lost an event (its first sequence is 1 and none was
// deleted): every event MongoDB's history holds went through the cache,
// which then answers for a user or type it never trimmed below its floor
// too (recent_trimmed.go). A stream that never lost an event now never
// did, so this is decided whenever it is asked, and a cache built by a
// Kiln before this is marked too (if it had trimmed, its filter is still
// not believed: it lacks the floor it was kept to). false: the cache of
// epoch is gone or not complete.
func (r *Recent) MarkWhole(ctx context.Context, epoch string) (bool, error) {
	p, err := r.keyPrefix(ctx)
	if err != nil {
		return false, err
	}
	ok, err := markWholeScript.Run(ctx, r.rdb, []string{p + "meta"}, epoch).Bool()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("mark recent cache whole: %w", err)
	}
	return ok, nil
}

var markWholeScript = redis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'epoch', 'complete')
if m[1] ~= ARGV[1] or m[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'whole', ARGV[1])
return 1`)

// SetPositions records the recent projection's and the history's ack
// floors (see RecentState). The history's is read before the cache's, so a
// cache that is caught up never looks behind.
func (r *Recent) SetPositions(ctx context.Context, checkpoint, historyCheckpoint uint64) error {
	p, err := r.keyPrefix(ctx)
	if err != nil {
		return err
	}
	// Only an existing cache gets positions: a flushed one must not look
	// started without an epoch.
	// Nor a cache on a master that has not verified it (failover.go).
	err = setPositionsScript.Run(ctx, r.rdb, []string{p + "meta"}, checkpoint, historyCheckpoint).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("set recent cache positions: %w", err)
	}
	return nil
}

var setPositionsScript = redis.NewScript(replidLua + `
if redis.call('HEXISTS', KEYS[1], 'epoch') == 1 and redis.call('HGET', KEYS[1], 'replid') == replid() then
  redis.call('HSET', KEYS[1], 'checkpoint', ARGV[1], 'historyCheckpoint', ARGV[2]) end
return 0`)

// AcquireLease takes or renews the rebuild lease of the cache for owner.
func (r *Recent) AcquireLease(ctx context.Context, owner string, ttl time.Duration) (bool, error) {
	p, err := r.keyPrefix(ctx)
	if err != nil {
		return false, err
	}
	ok, err := r.lease.Run(ctx, r.rdb, []string{p + "lease"}, owner, ttl.Milliseconds()).Bool()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("acquire recent cache lease: %w", err)
	}
	return ok, nil
}
