package readmodel

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/kilnhq/kiln/schemas"
)

// buildChunk is how many events one pipelined round of Write carries.
const buildChunk = 1000

// RecentBuild is a recent-events cache built in memory from events in
// stream order, with Apply's rules — the newest MaxEvents by position, the
// first copy of an id wins among the cached events, nothing at or below
// the floor (the newest position trimmed) — and written to Redis with plain
// pipelined commands: the hashes of the events from the sequence WriteFrom
// names on by Flush, as they come, while the stream is read (one trimmed
// after it was written is removed again), and the rest by Write, with
// every sorted-set entry in position order. A full replay adds every event of
// the stream; adding each to Redis through Apply's script and trimming it
// again cost ~12 µs an event, the bound of the counters' rebuild. The
// build holds the MaxEvents newest events rendered, as the cache does.
type RecentBuild struct {
	r     *Recent
	kept  positions              // cached positions, the oldest first
	byPos map[string]*builtEvent // position → event
	ids   map[string]string      // id → position, cached events only
	floor string
	// lost are the index names that lost an event (recent_trimmed.go).
	lost trimmedFilter
	// from is the first sequence Flush writes (WriteFrom).
	from uint64
	// pending are the events added and not written yet (some may have
	// been trimmed since), stale those trimmed after they were written.
	pending, stale []*builtEvent
	// master is the replication ID of the master that held the cache
	// before the first write ("": nothing written yet).
	master string
}

type builtEvent struct {
	pos, typ, user, id string
	body               []byte
	seq                uint64
	// written: its writes were sent (it may be in Redis); trimmed: it is
	// no longer in the build.
	written, trimmed bool
}

// NewBuild starts an in-memory build of the cache Write will fill; the
// cache under r's prefix must be empty (a new generation's).
func (r *Recent) NewBuild() *RecentBuild {
	// Sized up front: growing them was a sixth of Add's time.
	size := min(r.opts.MaxEvents, 1<<16)
	return &RecentBuild{r: r, byPos: make(map[string]*builtEvent, size), ids: make(map[string]string, size), from: math.MaxUint64}
}

// WriteFrom makes Flush write the events from stream sequence seq on (by
// default it writes none). A replay of a stream whose last sequence is
// head names head-MaxEvents+1: the events that can still be in the cache
// at the end if positions follow sequences. An event written and trimmed
// later costs its removal, so the earlier events are left to Write.
func (b *RecentBuild) WriteFrom(seq uint64) { b.from = seq }

// Add adds events (with Seq set), in stream order. Adding an event again
// (a retried batch) changes nothing.
func (b *RecentBuild) Add(events []schemas.Event) error {
	for _, ev := range events {
		pos := position(ev.Timestamp, ev.Seq)
		if b.floor != "" && pos <= b.floor {
			b.lost.mark("t:" + ev.EventType)
			b.lost.mark("u:" + ev.UserID)
			continue
		}
		if _, ok := b.ids[ev.ID]; ok { // this event again, or a later copy of its id
			continue
		}
		body, err := RenderEvent(ev)
		if err != nil {
			return err
		}
		e := &builtEvent{pos: pos, typ: ev.EventType, user: ev.UserID, id: ev.ID, body: body, seq: ev.Seq}
		b.byPos[pos] = e
		b.ids[ev.ID] = pos
		b.pending = append(b.pending, e)
		heap.Push(&b.kept, pos)
		if b.kept.Len() > b.r.opts.MaxEvents {
			victim := heap.Pop(&b.kept).(string)
			if e := b.byPos[victim]; e != nil {
				b.lost.mark("t:" + e.typ)
				b.lost.mark("u:" + e.user)
				delete(b.ids, e.id)
				delete(b.byPos, victim)
				e.trimmed = true
				if e.written {
					b.stale = append(b.stale, e)
				}
			}
			b.floor = victim
		}
	}
	return nil
}

// Len is how many events the build holds.
func (b *RecentBuild) Len() int { return b.kept.Len() }

// Flush writes the events added since the last Flush from the sequence
// WriteFrom names on to the cache's hashes (their sorted-set entries are
// left to Write, which adds them in position order), and removes those
// trimmed since they were written. The cache stays invisible until Write
// is done and the caller switches to it. A failed Flush is retried by the
// next (every write is idempotent).
func (b *RecentBuild) Flush(ctx context.Context) error { return b.flush(ctx, false) }

// Write stores the rest of the build in the cache under r's prefix: the
// same keys and values Apply would have left, the master that holds them
// included (the meta hash's replid, failover.go: a build holds every event
// it was given, as a cache Apply started does). It sets no epoch: the
// caller starts the cache and marks it complete once it switches to it.
// It fails if another master holds the cache than before the first write
// (Flush's included): the writes to the one before may be lost, and the
// cache must be emptied and built again.
func (b *RecentBuild) Write(ctx context.Context) error {
	if err := b.flush(ctx, true); err != nil {
		return err
	}
	p, err := b.r.keyPrefix(ctx)
	if err != nil {
		return err
	}
	if lost := b.lost.value(); len(lost) > 0 {
		if err := b.r.rdb.Set(ctx, p+"tb", lost, 0).Err(); err != nil {
			return fmt.Errorf("write recent cache filter: %w", err)
		}
	}
	ok, err := buildWrittenScript.Run(ctx, b.r.rdb, []string{p + "meta"}, b.master, b.floor).Bool()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("write recent cache floor: %w", err)
	}
	if !ok {
		return errors.New("write recent cache: the redis master changed during the write (a failover: the writes may be lost)")
	}
	return nil
}

func (b *RecentBuild) readMaster(ctx context.Context, p string) (string, error) {
	master, err := buildMasterScript.Run(ctx, b.r.rdb, []string{p + "meta"}).Text()
	if err != nil {
		return "", fmt.Errorf("read the redis master of the recent cache: %w", err)
	}
	return master, nil
}

// flush removes the stale events from the hashes, then writes the hashes
// of the pending events from sequence from on, or, at the end, every
// cached event's sorted-set entries and the hashes not written yet (in
// that order: a later copy of a removed event's id may be among them).
func (b *RecentBuild) flush(ctx context.Context, end bool) error {
	var write, keep []*builtEvent
	for _, e := range b.pending {
		switch {
		case e.trimmed:
		case end || e.seq >= b.from:
			write = append(write, e)
		default:
			keep = append(keep, e)
		}
	}
	if !end && len(write) == 0 && len(b.stale) == 0 {
		b.pending = keep
		return nil
	}
	p, err := b.r.keyPrefix(ctx)
	if err != nil {
		return err
	}
	if b.master == "" {
		if b.master, err = b.readMaster(ctx, p); err != nil {
			return err
		}
	}
	for start := 0; start < len(b.stale); start += buildChunk {
		if err := b.remove(ctx, p, b.stale[start:min(start+buildChunk, len(b.stale))]); err != nil {
			return err
		}
	}
	b.stale = nil
	if end {
		// In position order, each sorted-set insert lands next to the
		// one before: Redis walks a hot path of its skiplists, not a
		// random one (a third less of its CPU for events stamped out of
		// order). Several rounds go in one pipeline: Redis runs the first
		// while the next are encoded.
		write = write[:0]
		for _, e := range b.byPos {
			write = append(write, e)
		}
		slices.SortFunc(write, func(x, y *builtEvent) int { return strings.Compare(x.pos, y.pos) })
	}
	for start := 0; start < len(write); start += buildRound * buildChunk {
		pipe := b.r.rdb.Pipeline()
		round := write[start:min(start+buildRound*buildChunk, len(write))]
		for c := 0; c < len(round); c += buildChunk {
			b.write(ctx, pipe, p, round[c:min(c+buildChunk, len(round))], end)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("write %d recent events: %w", len(round), err)
		}
	}
	b.pending = keep
	return nil
}

// buildRound is how many chunks one pipeline of Write's carries.
const buildRound = 8

// write queues the hash fields of the events not written yet and, with
// sets, every event's sorted-set entries.
func (b *RecentBuild) write(ctx context.Context, pipe redis.Pipeliner, p string, part []*builtEvent, sets bool) {
	ev := make([]any, 0, 2*len(part))
	tu := make([]any, 0, 2*len(part))
	ids := make([]any, 0, 2*len(part))
	for _, e := range part {
		if e.written {
			continue
		}
		// Marked before the writes: an event whose write fails may be in
		// Redis all the same, and is removed if it is trimmed before the
		// next flush writes it again.
		e.written = true
		ev = append(ev, e.pos, e.body)
		tu = append(tu, e.pos, e.typ+"\n"+strconv.Itoa(len(e.id))+"\n"+e.id+e.user)
		ids = append(ids, e.id, e.pos)
	}
	if len(ev) > 0 {
		pipe.HSet(ctx, p+"ev", ev...)
		pipe.HSet(ctx, p+"tu", tu...)
		pipe.HSet(ctx, p+"ids", ids...)
	}
	if !sets {
		return
	}
	members := make([]any, 0, 2+2*len(part))
	members = append(members, "ZADD", p+"all")
	byKey := map[string][]any{}
	var order []string // the sets in first-use order (a pipeline in a stable order)
	for _, e := range part {
		members = append(members, 0, e.pos)
		for _, key := range []string{"t:" + e.typ, "u:" + e.user} {
			if _, ok := byKey[key]; !ok {
				order = append(order, key)
				byKey[key] = []any{"ZADD", p + key}
			}
			byKey[key] = append(byKey[key], 0, e.pos)
		}
	}
	pipe.Do(ctx, members...)
	for _, key := range order {
		pipe.Do(ctx, byKey[key]...)
	}
}

// remove deletes the hash fields of events written before and trimmed
// since (their sorted-set entries are written only at the end).
func (b *RecentBuild) remove(ctx context.Context, p string, part []*builtEvent) error {
	pos := make([]string, 0, len(part))
	ids := make([]string, 0, len(part))
	for _, e := range part {
		pos = append(pos, e.pos)
		ids = append(ids, e.id)
	}
	pipe := b.r.rdb.Pipeline()
	pipe.HDel(ctx, p+"ev", pos...)
	pipe.HDel(ctx, p+"tu", pos...)
	pipe.HDel(ctx, p+"ids", ids...)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("remove %d trimmed recent events: %w", len(part), err)
	}
	return nil
}

var (
	// buildMasterScript returns the replication ID of the master holding
	// KEYS[1] (the script runs there).
	buildMasterScript = redis.NewScript(replidLua + `return replid()`)
	// buildWrittenScript records the master that holds the build's writes
	// (ARGV[1], read before them) and the floor (ARGV[2], if any; the
	// filter, written before, is kept to it), unless another master holds
	// the cache now.
	buildWrittenScript = redis.NewScript(replidLua + `
if replid() ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'replid', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'floor', ARGV[2], 'names', ARGV[2]) end
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
