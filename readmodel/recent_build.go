package readmodel

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/kilnhq/kiln/schemas"
)

// buildChunk is how many events one pipelined round of Write carries.
const buildChunk = 1000

// RecentBuild is a recent-events cache built in memory from events in
// stream order, with Apply's rules — the newest MaxEvents by position, the
// first copy of an id wins among the cached events, nothing at or below
// the floor (the newest position trimmed) — and written to Redis at once
// by Write with plain pipelined commands. A full replay adds every event
// of the stream; adding each to Redis through Apply's script and trimming
// it again cost ~12 µs an event, the bound of the counters' rebuild. The
// build holds the MaxEvents newest events rendered, as the cache does.
type RecentBuild struct {
	r     *Recent
	kept  positions              // cached positions, the oldest first
	byPos map[string]*builtEvent // position → event
	ids   map[string]string      // id → position, cached events only
	floor string
}

type builtEvent struct {
	pos, typ, user, id string
	body               []byte
}

// NewBuild starts an in-memory build of the cache Write will fill; the
// cache under r's prefix must be empty (a new generation's).
func (r *Recent) NewBuild() *RecentBuild {
	return &RecentBuild{r: r, byPos: map[string]*builtEvent{}, ids: map[string]string{}}
}

// Add adds events (with Seq set), in stream order. Adding an event again
// (a retried batch) changes nothing.
func (b *RecentBuild) Add(events []schemas.Event) error {
	for _, ev := range events {
		pos := position(ev.Timestamp, ev.Seq)
		if b.floor != "" && pos <= b.floor {
			continue
		}
		if _, ok := b.ids[ev.ID]; ok { // this event again, or a later copy of its id
			continue
		}
		body, err := RenderEvent(ev)
		if err != nil {
			return err
		}
		b.byPos[pos] = &builtEvent{pos: pos, typ: ev.EventType, user: ev.UserID, id: ev.ID, body: body}
		b.ids[ev.ID] = pos
		heap.Push(&b.kept, pos)
		if b.kept.Len() > b.r.opts.MaxEvents {
			victim := heap.Pop(&b.kept).(string)
			if e := b.byPos[victim]; e != nil {
				delete(b.ids, e.id)
				delete(b.byPos, victim)
			}
			b.floor = victim
		}
	}
	return nil
}

// Len is how many events the build holds.
func (b *RecentBuild) Len() int { return b.kept.Len() }

// Write stores the build in the cache under r's prefix: the same keys and
// values Apply would have left, the master that holds them included (the
// meta hash's replid, failover.go: a build holds every event it was given,
// as a cache Apply started does). It sets no epoch: the caller starts the
// cache and marks it complete once it switches to it. It fails if another
// master holds the cache when the writes are done: the writes to the one
// before may be lost (write the build again).
func (b *RecentBuild) Write(ctx context.Context) error {
	p, err := b.r.keyPrefix(ctx)
	if err != nil {
		return err
	}
	master, err := buildMasterScript.Run(ctx, b.r.rdb, []string{p + "meta"}).Text()
	if err != nil {
		return fmt.Errorf("read the redis master of the recent cache: %w", err)
	}
	all := make([]*builtEvent, 0, len(b.byPos))
	for _, e := range b.byPos {
		all = append(all, e)
	}
	for start := 0; start < len(all); start += buildChunk {
		part := all[start:min(start+buildChunk, len(all))]
		pipe := b.r.rdb.Pipeline()
		members := make([]any, 0, 2*len(part))
		ev := make([]any, 0, 2*len(part))
		tu := make([]any, 0, 2*len(part))
		ids := make([]any, 0, 2*len(part))
		sets := map[string][]any{}
		for _, e := range part {
			members = append(members, 0, e.pos)
			ev = append(ev, e.pos, e.body)
			tu = append(tu, e.pos, e.typ+"\n"+strconv.Itoa(len(e.id))+"\n"+e.id+e.user)
			ids = append(ids, e.id, e.pos)
			sets["t:"+e.typ] = append(sets["t:"+e.typ], 0, e.pos)
			sets["u:"+e.user] = append(sets["u:"+e.user], 0, e.pos)
		}
		pipe.Do(ctx, append([]any{"ZADD", p + "all"}, members...)...)
		pipe.HSet(ctx, p+"ev", ev...)
		pipe.HSet(ctx, p+"tu", tu...)
		pipe.HSet(ctx, p+"ids", ids...)
		for key, args := range sets {
			pipe.Do(ctx, append([]any{"ZADD", p + key}, args...)...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("write %d recent events: %w", len(part), err)
		}
	}
	ok, err := buildWrittenScript.Run(ctx, b.r.rdb, []string{p + "meta"}, master, b.floor).Bool()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("write recent cache floor: %w", err)
	}
	if !ok {
		return errors.New("write recent cache: the redis master changed during the write (a failover: the writes may be lost)")
	}
	return nil
}

var (
	// buildMasterScript returns the replication ID of the master holding
	// KEYS[1] (the script runs there).
	buildMasterScript = redis.NewScript(replidLua + `return replid()`)
	// buildWrittenScript records the master that holds the build's writes
	// (ARGV[1], read before them) and the floor (ARGV[2], if any), unless
	// another master holds the cache now.
	buildWrittenScript = redis.NewScript(replidLua + `
if replid() ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'replid', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'floor', ARGV[2]) end
return 1`)
)

// positions is a min-heap of positions (the oldest on top).
type positions []string

func (h positions) Len() int           { return len(h) }
func (h positions) Less(i, j int) bool { return h[i] < h[j] }
func (h positions) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *positions) Push(x any)        { *h = append(*h, x.(string)) }
func (h *positions) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
