package replay

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/projector/internal/streamread"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// requireExact checks that the live generation of projection holds exactly
// the events sent: the history by count, the counters by type (with
// asOfSeq at the stream's head) and the recent-events cache by count (and
// marked complete, when the replay was a full one).
func (e *env) requireExact(t *testing.T, projection string, full bool) {
	t.Helper()
	ctx := context.Background()
	if projection == History {
		n, err := readmodel.FollowHistory(e.deps.Mongo).Count(ctx)
		require.NoError(t, err)
		require.Equal(t, e.total(), n, "history documents")
		return
	}
	m, err := readmodel.FollowCounters(e.deps.Redis, readmodel.CountersOptions{}).Snapshot(ctx, time.Now())
	require.NoError(t, err)
	require.Equal(t, e.sent, m.Totals, "counters by type")
	require.Equal(t, uint64(e.total()), m.AsOfSeq, "asOfSeq")
	st, err := readmodel.FollowRecent(e.deps.Redis, readmodel.RecentOptions{}).State(ctx)
	require.NoError(t, err)
	require.Equal(t, e.total(), st.Count, "events in the recent cache")
	require.Equal(t, full, st.Complete, "the rebuilt cache is complete")
}

// Replays in batches of 100 of streams one below, at and one above a
// multiple of the batch size (and a stream shorter than one batch) each
// hold every event exactly once: the reader's last, partial fetch is
// neither lost nor applied twice.
func TestReplayBatchBoundaries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, size := range []int{1, 199, 200, 201} {
		e.publish(t, size-int(e.total()))
		for _, p := range Projections() {
			applied := 0
			_, err := Run(context.Background(), e.deps, Options{
				Projections: []string{p}, BatchSize: 100, Owner: "test",
				OnProgress: func(pr Progress) {
					if pr.Phase == "done" {
						applied = pr.Applied
					}
				},
			})
			require.NoError(t, err, "%s, %d events", p, size)
			require.Equal(t, size, applied, "%s: events applied", p)
			e.requireExact(t, p, true)
		}
	}
}

// crashingTarget writes only the first half of its third batch, then
// stops the replay, as a process killed in the middle of a write would.
type crashingTarget struct {
	target
	crash context.CancelFunc
	// whole is the last sequence of the second batch, written whole.
	whole *uint64
}

func (c crashingTarget) open(ctx context.Context, gen int64) (func(context.Context, []schemas.Event) error, error) {
	apply, err := c.target.open(ctx, gen)
	if err != nil {
		return nil, err
	}
	calls := 0
	return func(ctx context.Context, evs []schemas.Event) error {
		if calls++; calls < 3 {
			err := apply(ctx, evs)
			if err == nil && calls == 2 {
				*c.whole = evs[len(evs)-1].Seq
			}
			return err
		}
		if err := apply(ctx, evs[:len(evs)/2]); err != nil {
			return err
		}
		c.crash()
		return errors.New("crashed half-way through a batch")
	}, nil
}

// crashingRun is a replay of opts' one projection whose context (ctx) is
// cancelled half-way through writing its third batch, as a crash would
// stop it; *whole is then the last sequence of the second batch, the last
// written whole.
func crashingRun(t *testing.T, e *env, opts Options) (r *run, ctx context.Context, whole *uint64) {
	t.Helper()
	require.NoError(t, opts.validate())
	ctx, crash := context.WithCancel(context.Background())
	t.Cleanup(crash)
	stream, err := e.deps.JetStream.Stream(ctx, schemas.StreamName)
	require.NoError(t, err)
	whole = new(uint64)
	p := opts.Projections[0]
	r = &run{name: p, deps: e.deps, opts: opts, stream: stream, states: newStateStore(e.deps.Mongo),
		target: crashingTarget{target: targetFor(p, e.deps, opts), crash: crash, whole: whole}}
	return r, ctx, whole
}

// A replay that stops half-way through writing a batch, resumed, holds
// every event exactly once: the resumed replay writes the whole batch
// again, and the counters' seen-bits, the cache's positions and the
// history's ids make the half already written count once.
func TestReplayCrashedMidBatchResumesExactly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.publish(t, 1000)
	for _, p := range Projections() {
		t.Run(p, func(t *testing.T) {
			r, ctx, whole := crashingRun(t, e, Options{Projections: []string{p}, BatchSize: 100, Owner: "crashing"})
			require.NoError(t, r.plan(ctx))
			require.Error(t, r.run(ctx))
			st, found, err := r.states.Load(context.Background(), p)
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, StatusInterrupted, st.Status)
			require.NotZero(t, *whole)
			require.Equal(t, *whole, st.Position, "the state names the last whole batch")

			plans, err := Run(context.Background(), e.deps, Options{Projections: []string{p}, BatchSize: 100, Resume: true, Owner: "resumed"})
			require.NoError(t, err)
			require.Len(t, plans, 1)
			if p == Counters {
				// The cache of a full replay is built in memory: its resume
				// reads the stream again, into the same shadow.
				require.Equal(t, uint64(1), plans[0].FromSeq, "resumed from the start")
			} else {
				require.Equal(t, *whole+1, plans[0].FromSeq, "resumed after the last whole batch")
			}
			// The resumed replay continues a full one: its cache is
			// complete at the switch.
			e.requireExact(t, p, true)
		})
	}
}

// Issue 22 item 4: a replay took one empty fetch for the end of the
// stream, switched to its shadow with none of the events (replay_rate
// reported 0 applied on a loaded machine) and dropped the complete
// generation. It switches only once nothing is left after its position.
func TestReplayOutlastsEmptyFetches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.publish(t, 500)
	for _, p := range Projections() {
		t.Run(p, func(t *testing.T) {
			ctx := context.Background()
			opts := Options{Projections: []string{p}, BatchSize: 100, Owner: "test"}
			require.NoError(t, opts.validate())
			stream, err := e.deps.JetStream.Stream(ctx, schemas.StreamName)
			require.NoError(t, err)
			var fetches atomic.Int64
			r := &run{name: p, deps: e.deps, opts: opts, stream: stream, states: newStateStore(e.deps.Mongo),
				target: targetFor(p, e.deps, opts),
				fetch: func(read func() (streamread.Batch, error)) (streamread.Batch, error) {
					if k := fetches.Add(1); k == 1 || k%2 == 0 {
						return streamread.Batch{}, nil // the first wait, and every other, comes back empty
					}
					return read()
				}}
			require.NoError(t, r.plan(ctx))
			require.NoError(t, r.run(ctx))
			e.requireExact(t, p, true)
		})
	}
}

// A full replay writes its cache's hashes as it reads the stream; one that
// crashed and is resumed after the stream grew builds the cache again into
// the same shadow: the entries the crashed one wrote that are no longer
// among the newest are gone (the resume empties the shadow's cache first).
func TestReplayResumedAfterTheStreamGrewLeavesNoStaleCacheEntries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.publish(t, 300)
	r, ctx, _ := crashingRun(t, e, Options{Projections: []string{Counters}, BatchSize: 100, RecentMaxEvents: 200, Owner: "crashing"})
	require.NoError(t, r.plan(ctx))
	require.Equal(t, uint64(101), r.target.(crashingTarget).target.(*countersTarget).writeFrom, "the last 200 events are written as they come")
	require.Error(t, r.run(ctx))
	shadow := readmodel.RecentPrefixFor(readmodel.PrefixFor(r.p.NewGeneration))
	require.NotZero(t, e.deps.Redis.HLen(context.Background(), shadow+"ev").Val(), "the crashed replay wrote cache entries")

	e.publish(t, 300)
	_, err := Run(context.Background(), e.deps, Options{Projections: []string{Counters}, BatchSize: 100, RecentMaxEvents: 200, Resume: true, Owner: "resumed"})
	require.NoError(t, err)
	gen, err := readmodel.CountersGeneration(context.Background(), e.deps.Redis)
	require.NoError(t, err)
	require.Equal(t, r.p.NewGeneration, gen)
	all := e.deps.Redis.ZRange(context.Background(), shadow+"all", 0, -1).Val()
	require.Len(t, all, 200)
	for _, h := range []string{"ev", "tu"} {
		keys := e.deps.Redis.HKeys(context.Background(), shadow+h).Val()
		require.ElementsMatch(t, all, keys, "%s holds the cached events only", h)
	}
	require.Equal(t, int64(200), e.deps.Redis.HLen(context.Background(), shadow+"ids").Val())
	m, err := readmodel.FollowCounters(e.deps.Redis, readmodel.CountersOptions{}).Snapshot(context.Background(), time.Now())
	require.NoError(t, err)
	require.Equal(t, e.sent, m.Totals, "counters by type")
}
