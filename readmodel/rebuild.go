package readmodel

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// A counters rebuild replays the stream into the counters after Redis lost
// them. Its state lives in Redis so that any projector process can take it
// over: meta.rebuildUpTo is the stream sequence the replay must reach, and a
// short lease names the process doing it.

// MarkRebuild records that the counters must be rebuilt up to seq. It
// also resets their checkpoint (asOfSeq), in the same write: counters that
// need a rebuild hold only part of the events, so no sequence is complete
// until the replay passes it (the replay raises the checkpoint as it goes,
// and the live checkpoint is not written meanwhile: SetLiveCheckpoint).
func (c *Counters) MarkRebuild(ctx context.Context, upTo uint64) error {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return err
	}
	if err := c.rdb.HSet(ctx, p+"meta", "rebuildUpTo", upTo, "checkpoint", 0).Err(); err != nil {
		return fmt.Errorf("mark counters rebuild: %w", err)
	}
	return nil
}

// SetLiveCheckpoint records the live projection's ack floor as the
// checkpoint, never moving it backwards, unless a rebuild is pending: then
// the totals are partial below the floor, and only the replay's own
// progress (SetCheckpoint) may be claimed; nor on counters that do not
// exist yet (a flushed Redis, before the rebuild is marked). It reports
// whether it wrote.
func (c *Counters) SetLiveCheckpoint(ctx context.Context, seq uint64) (bool, error) {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return false, err
	}
	wrote, err := setLiveCheckpointScript.Run(ctx, c.rdb, []string{p + "meta"}, seq).Int()
	if err != nil {
		return false, fmt.Errorf("set counters checkpoint: %w", err)
	}
	return wrote == 1, nil
}

// setLiveCheckpointScript writes nothing on a master that has not verified
// the counters (failover.go): they may lack acknowledged events.
var setLiveCheckpointScript = redis.NewScript(replidLua + `
if redis.call('HGET', KEYS[1], 'replid') ~= replid() then return 0 end
if redis.call('HEXISTS', KEYS[1], 'rebuildUpTo') == 1 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'epoch') == 0 then return 0 end
local cur = tonumber(redis.call('HGET', KEYS[1], 'checkpoint') or '0')
if tonumber(ARGV[1]) > cur then redis.call('HSET', KEYS[1], 'checkpoint', ARGV[1]) end
return 1`)

// SetRebuildCheckpoint records seq as the checkpoint reached by the replay
// of r, never moving it backwards, unless the counters are no longer r's
// (a flush during the replay started new counters, which hold only what
// was counted since: their rebuild claims its own progress).
func (c *Counters) SetRebuildCheckpoint(ctx context.Context, r Rebuild, seq uint64) error {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return err
	}
	if err := setRebuildCheckpointScript.Run(ctx, c.rdb, []string{p + "meta"}, r.Epoch, seq).Err(); err != nil {
		return fmt.Errorf("set counters rebuild checkpoint: %w", err)
	}
	return nil
}

// setRebuildCheckpointScript, like setLiveCheckpointScript, writes nothing
// on a master that has not verified the counters.
var setRebuildCheckpointScript = redis.NewScript(replidLua + `
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'replid') ~= replid() then return 0 end
local cur = tonumber(redis.call('HGET', KEYS[1], 'checkpoint') or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], 'checkpoint', ARGV[2]) end
return 1`)

// Rebuild is a pending counters rebuild.
type Rebuild struct {
	// UpTo is the stream sequence the replay must reach; 0 when the
	// counters were started with a rebuild whose target is not set yet
	// (MarkRebuildWhenFresh): the projector sets it (MarkRebuild).
	UpTo uint64
	// Epoch identifies the counters the rebuild is for: a flush during the
	// rebuild starts new counters with a new epoch, which need a rebuild
	// of their own.
	Epoch string
}

// PendingRebuild returns the rebuild to run, if any.
func (c *Counters) PendingRebuild(ctx context.Context) (r Rebuild, pending bool, err error) {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return r, false, err
	}
	v, err := c.rdb.HMGet(ctx, p+"meta", "rebuildUpTo", "epoch").Result()
	if err != nil {
		return r, false, fmt.Errorf("read counters rebuild: %w", err)
	}
	upTo, _ := v[0].(string)
	if upTo == "" {
		return r, false, nil
	}
	r.Epoch, _ = v[1].(string)
	r.UpTo, err = strconv.ParseUint(upTo, 10, 64)
	if err != nil {
		return r, false, fmt.Errorf("read counters rebuild: %w", err)
	}
	return r, true, nil
}

// EndRebuild clears the rebuild mark, if the counters are still those of
// r's epoch, and releases the lease. done is false when Redis was flushed
// during the rebuild: a rebuild for the new counters is still pending.
func (c *Counters) EndRebuild(ctx context.Context, owner string, r Rebuild) (done bool, err error) {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return false, err
	}
	done, err = c.endRebuild.Run(ctx, c.rdb, []string{p + "meta"}, r.Epoch).Bool()
	if err != nil && err != redis.Nil {
		return false, fmt.Errorf("end counters rebuild: %w", err)
	}
	return done, c.ReleaseLease(ctx, owner)
}

const endRebuildLua = `
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'rebuildUpTo')
  return 1
end
return 0`

// AcquireLease takes or renews the rebuild lease for owner; false means
// another process holds it.
func (c *Counters) AcquireLease(ctx context.Context, owner string, ttl time.Duration) (bool, error) {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return false, err
	}
	ok, err := c.lease.Run(ctx, c.rdb, []string{p + "rebuild-lease"}, owner, ttl.Milliseconds()).Bool()
	if err != nil && err != redis.Nil {
		return false, fmt.Errorf("acquire rebuild lease: %w", err)
	}
	return ok, nil
}

// ReleaseLease gives the lease up if owner holds it.
func (c *Counters) ReleaseLease(ctx context.Context, owner string) error {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return err
	}
	key := p + "rebuild-lease"
	if v, _ := c.rdb.Get(ctx, key).Result(); v == owner {
		return c.rdb.Del(ctx, key).Err()
	}
	return nil
}

const leaseLua = `
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`
