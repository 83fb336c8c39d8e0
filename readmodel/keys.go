package readmodel

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Redis key layout, cluster-safe. Every key a script or multi-key command
// touches is passed in KEYS, and the keys one script touches share one hash
// tag, so they share one Redis Cluster slot:
//
//	kiln:generation                  the live generation (a slot of its own)
//	kiln:{g<N>}:meta, all, s:<sec>, m:<min>, seen:<block>, rebuild-lease
//	                                 generation N's counters: one slot
//	kiln:{g<N>:recent}:meta, all, ev, tu, ids, t:<type>, u:<userId>, lease
//	                                 generation N's recent-events cache: one slot
//
// The counters script tests-and-sets the seen bits and increments the
// buckets in one step (exactly once), and the cache script trims any
// type's and user's index, so neither can be split finer. Each generation's
// counters and its cache land on two slots (usually two masters); the
// generations, the pointer and everything else spread by their tags.

// tagged returns p as a prefix whose keys share one hash tag: p itself if
// it has one ("kiln:{g3}:"), else p inside braces ("x:" -> "{x:}").
func tagged(p string) string {
	if strings.Contains(p, "{") {
		return p
	}
	return "{" + p + "}"
}

// RecentPrefixFor is the key prefix of the recent-events cache that lives
// beside the counters under countersPrefix: the same tag with ":recent"
// inside it ("kiln:{g3}:" -> "kiln:{g3:recent}:"), so the cache has a
// slot of its own.
func RecentPrefixFor(countersPrefix string) string {
	p := tagged(countersPrefix)
	i := strings.LastIndex(p, "}")
	if strings.HasSuffix(p[:i], ":") {
		return p[:i] + "recent:" + p[i:]
	}
	return p[:i] + ":recent" + p[i:]
}

// floorDiv is a/b rounded down (Lua's math.floor(a / b)).
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// keyList collects a script's KEYS, each once, and gives their 1-based
// index in KEYS.
type keyList struct {
	keys []string
	idx  map[string]int
}

func newKeyList(fixed ...string) *keyList {
	l := &keyList{idx: map[string]int{}}
	for _, k := range fixed {
		l.add(k)
	}
	return l
}

// add returns key's index in KEYS, adding it if new.
func (l *keyList) add(key string) int {
	if i, ok := l.idx[key]; ok {
		return i
	}
	l.keys = append(l.keys, key)
	l.idx[key] = len(l.keys)
	return len(l.keys)
}

// scanKeys calls fn with every key matching pattern, on every master of a
// Cluster (SCAN is per node).
func scanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string, fn func(ctx context.Context, c redis.UniversalClient, keys []string) error) error {
	one := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 1000 {
				if err := fn(ctx, c, batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		if len(batch) > 0 {
			return fn(ctx, c, batch)
		}
		return nil
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return one(ctx, c) })
	}
	return one(ctx, rdb)
}

// genTag is the hash tag of generation gen's counters.
func genTag(gen int64) string { return "{g" + strconv.FormatInt(gen, 10) + "}" }
