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

// MarkRebuild records that the counters must be rebuilt up to seq.
func (c *Counters) MarkRebuild(ctx context.Context, upTo uint64) error {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return err
	}
	if err := c.rdb.HSet(ctx, p+"meta", "rebuildUpTo", upTo).Err(); err != nil {
		return fmt.Errorf("mark counters rebuild: %w", err)
	}
	return nil
}

// PendingRebuild returns the sequence a pending rebuild must reach.
func (c *Counters) PendingRebuild(ctx context.Context) (upTo uint64, pending bool, err error) {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return 0, false, err
	}
	v, err := c.rdb.HGet(ctx, p+"meta", "rebuildUpTo").Result()
	if err == redis.Nil {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read counters rebuild: %w", err)
	}
	upTo, err = strconv.ParseUint(v, 10, 64)
	return upTo, err == nil, err
}

// EndRebuild clears the rebuild mark and releases the lease.
func (c *Counters) EndRebuild(ctx context.Context, owner string) error {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return err
	}
	if err := c.rdb.HDel(ctx, p+"meta", "rebuildUpTo").Err(); err != nil {
		return fmt.Errorf("end counters rebuild: %w", err)
	}
	return c.ReleaseLease(ctx, owner)
}

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
