package projbench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// CountersPrefix namespaces every key the counters measurements write: the
// counters under test use it as their key prefix, the baseline writes below
// CountersPrefix+"raw:". It is outside "kiln:", so neither the live
// counters nor a replay's drop of an old generation ever meet it.
const CountersPrefix = "kilnbench:"

// MeasureCounters counts fresh batches with readmodel's Counters.Apply (one
// Lua script per batch: a test-and-set per event sequence, then the bucket
// increments) and, before or after each batch (alternating), sends the
// baseline for the same batch (RawIncr), for about d. The keys under
// CountersPrefix are deleted before and after.
func MeasureCounters(ctx context.Context, rdb redis.UniversalClient, batch int, d time.Duration) (t Timing, err error) {
	if err := DeleteKeys(ctx, rdb, CountersPrefix); err != nil {
		return t, err
	}
	defer func() { err = errors.Join(err, DeleteKeys(context.WithoutCancel(ctx), rdb, CountersPrefix)) }()
	// A hash tag inside the prefix keeps the keys under CountersPrefix
	// (an untagged prefix would be put in braces: "{kilnbench:}...").
	c := readmodel.NewCounters(rdb, readmodel.CountersOptions{Prefix: CountersPrefix + "{c}:"})
	return Interleave(ctx, batch, d,
		func(ctx context.Context, b []schemas.Event) error {
			res, err := c.Apply(ctx, b, time.Now())
			if err == nil && res.Applied != len(b) {
				err = fmt.Errorf("counters apply counted %d of %d new events", res.Applied, len(b))
			}
			return err
		},
		func(ctx context.Context, b []schemas.Event) error { return RawIncr(ctx, rdb, b) })
}

// RawIncr is the counters baseline: one pipelined HINCRBY per event on its
// per-second bucket (under CountersPrefix), the least a counter per event
// costs, with no exactly-once bookkeeping.
func RawIncr(ctx context.Context, rdb redis.UniversalClient, events []schemas.Event) error {
	raw := CountersPrefix + "raw:s:"
	pipe := rdb.Pipeline()
	for _, ev := range events {
		pipe.HIncrBy(ctx, raw+strconv.FormatInt(ev.Timestamp/1000, 10), ev.EventType, 1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("baseline HINCRBY pipeline of %d: %w", len(events), err)
	}
	return nil
}

// DeleteKeys deletes every key that starts with prefix.
func DeleteKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan %s*: %w", prefix, err)
	}
	for _, part := range split(keys, 1000) {
		if err := rdb.Del(ctx, part...).Err(); err != nil {
			return fmt.Errorf("delete %s*: %w", prefix, err)
		}
	}
	return nil
}
