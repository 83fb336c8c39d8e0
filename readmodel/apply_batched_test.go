package readmodel

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// The scripts as they were before their writes were grouped per key (one
// command per event and key): the reference the grouped ones must match.
// They record the master that started the counters or the cache, as the
// grouped ones do (failover.go): that is part of the effect compared.
var (
	//go:embed testdata/counters_per_event.lua
	countersPerEventLua string
	//go:embed testdata/recent_apply_per_event.lua
	recentPerEventLua string
)

// TestGroupedScriptsMatchPerEventOnes applies the same random batches (out
// of order timestamps, redelivered events, second copies of an id, sequences
// across a seen-bitmap boundary, batches from 1 event to more than a
// command's chunk, a cache bound that trims) with the grouped scripts under
// one prefix and the per-event ones under another, and requires the same
// results and the same keys holding the same values after every batch.
func TestGroupedScriptsMatchPerEventOnes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := testsupport.StartRedis(t).Client(t)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))

	for _, maxEvents := range []int{5, 300, 100_000} {
		t.Run(fmt.Sprint("max ", maxEvents), func(t *testing.T) {
			pre := fmt.Sprintf("m%d:", maxEvents)
			newC := NewCounters(rdb, CountersOptions{Prefix: pre + "new:"})
			oldC := perEventCounters{rdb: rdb, c: NewCounters(rdb, CountersOptions{Prefix: pre + "old:"})}
			newR := NewRecent(rdb, RecentOptions{Prefix: pre + "new:", MaxEvents: maxEvents})
			oldR := perEventRecent{rdb: rdb, r: NewRecent(rdb, RecentOptions{Prefix: pre + "old:", MaxEvents: maxEvents})}

			now := time.Now()
			seq := uint64(1<<20 - 1500) // the batches cross the first seen bitmap's end
			var sent []schemas.Event
			for _, size := range []int{1, 2, 7, 1000, 2500, 3, 1200, 1} {
				batch := make([]schemas.Event, 0, size)
				for range size {
					switch {
					case len(sent) > 0 && rng.IntN(20) == 0: // redelivered
						batch = append(batch, sent[rng.IntN(len(sent))])
						continue
					case len(sent) > 0 && rng.IntN(30) == 0: // an id stored again later
						ev := sent[rng.IntN(len(sent))]
						ev.Seq, ev.Timestamp = seq, stamp(rng, now)
						seq++
						batch = append(batch, ev)
						continue
					}
					ev := schemas.Event{
						ID: fmt.Sprintf("e%d", seq), EventType: []string{"a", "b", "order.created"}[rng.IntN(3)],
						UserID: fmt.Sprintf("u%d", rng.IntN(9)), Timestamp: stamp(rng, now),
						ReceivedAt: now.UnixMilli(), Seq: seq, Metadata: json.RawMessage(fmt.Sprintf(`{"i":%d}`, seq)),
					}
					seq++
					sent = append(sent, ev)
					batch = append(batch, ev)
				}
				gotC, err := newC.Apply(ctx, batch, now)
				require.NoError(t, err)
				wantC, err := oldC.Apply(ctx, batch, now)
				require.NoError(t, err)
				require.Equal(t, wantC, gotC, "counters result of a batch of %d", size)
				gotR, err := newR.Apply(ctx, batch, now)
				require.NoError(t, err)
				wantR, err := oldR.Apply(ctx, batch, now)
				require.NoError(t, err)
				require.Equal(t, wantR, gotR, "cache result of a batch of %d", size)
				requireSameKeys(t, dumpKeys(t, rdb, "{"+pre+"old:"), dumpKeys(t, rdb, "{"+pre+"new:"), size)
			}
		})
	}
}

// perEventCounters runs the per-event counters script, which takes the
// prefix in ARGV and builds its keys itself (as the scripts did before
// they passed every key in KEYS: fine on one server, refused by Cluster).
type perEventCounters struct {
	rdb redis.UniversalClient
	c   *Counters
}

func (o perEventCounters) Apply(ctx context.Context, events []schemas.Event, now time.Time) (CountResult, error) {
	c := o.c
	args := []any{tagged(c.opts.Prefix), now.Unix(), int64(secondRetention / time.Second),
		int64(c.opts.MinuteRetention / time.Second), int64(seenRetention / time.Second), epochOf(now),
		int64(c.opts.MaxFutureSkew / time.Second), c.markFlag()}
	for _, ev := range events {
		args = append(args, ev.Seq, ev.EventType, ev.Timestamp)
	}
	res, err := redis.NewScript(replidLua+countersPerEventLua).Run(ctx, o.rdb, nil, args...).Int64Slice()
	if err != nil {
		return CountResult{}, err
	}
	return CountResult{Applied: int(res[0]), Fresh: res[1] == 1}, nil
}

// perEventRecent runs the per-event cache script (see perEventCounters).
type perEventRecent struct {
	rdb redis.UniversalClient
	r   *Recent
}

func (o perEventRecent) Apply(ctx context.Context, events []schemas.Event, now time.Time) (RecentResult, error) {
	args := []any{RecentPrefixFor(o.r.opts.Prefix), o.r.opts.MaxEvents, epochOf(now)}
	for _, ev := range events {
		b, err := RenderEvent(ev)
		if err != nil {
			return RecentResult{}, err
		}
		args = append(args, position(ev.Timestamp, ev.Seq), ev.EventType, ev.UserID, ev.ID, b)
	}
	res, err := redis.NewScript(replidLua+trimmedLua+recentPerEventLua).Run(ctx, o.rdb, nil, args...).Int64Slice()
	if err != nil {
		return RecentResult{}, err
	}
	return RecentResult{Added: int(res[0]), Fresh: res[1] == 1}, nil
}

// stamp is a timestamp within the hour before now whose per-second bucket,
// if it gets one, lives at least 150 s past now: a bucket expiring while
// the keys are compared tells nothing about the scripts (one did, under
// CI load, when buckets could expire 10 s after now and the subtest ran
// 10.6 s: its TTL read 0 on one side, 1 on the other).
func stamp(rng *rand.Rand, now time.Time) int64 {
	for {
		ago := rng.Int64N(3_600_000)
		if ago < 30_000 || ago > secondRetention.Milliseconds()+10_000 {
			return now.UnixMilli() - ago
		}
	}
}

// requireSameKeys compares two dumps, naming only the keys that differ.
func requireSameKeys(t *testing.T, want, got map[string]string, size int) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("after a batch of %d, key %s:\n per event: %.300s\n grouped:   %.300s", size, k, v, got[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Fatalf("after a batch of %d, key %s only with the grouped scripts", size, k)
		}
	}
}

// dumpKeys renders every key under prefix (without it) with its value and
// whether it expires.
func dumpKeys(t *testing.T, rdb *redis.Client, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	require.NoError(t, err)
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		var v string
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "hash":
			m := rdb.HGetAll(ctx, k).Val()
			fields := make([]string, 0, len(m))
			for f, x := range m {
				fields = append(fields, f+"="+x)
			}
			sort.Strings(fields)
			v = strings.Join(fields, ",")
		case "zset":
			v = strings.Join(rdb.ZRange(ctx, k, 0, -1).Val(), ",")
		case "string":
			v = rdb.Get(ctx, k).Val()
		default:
			t.Fatalf("key %s of type %s", k, typ)
		}
		out[strings.TrimPrefix(k, prefix)] = fmt.Sprintf("%s expires:%v", v, rdb.TTL(ctx, k).Val() > 0)
	}
	return out
}
