package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/projector/internal/consume"
	"github.com/kilnhq/kiln/projector/internal/streamread"
	"github.com/kilnhq/kiln/schemas"
)

// readAhead is how many batches are fetched and decoded ahead of the one
// being written (memory: readAhead+2 batches).
const readAhead = 2

// run is the replay of one projection.
type run struct {
	name   string
	deps   Deps
	opts   Options
	stream jetstream.Stream
	states stateStore
	target target
	p      Plan
	st     State
	// abandoned is the generation of an unfinished earlier replay that a
	// fresh replay replaces (0: none).
	abandoned int64
	// fetch stands between the reader and each read (tests; nil: none).
	fetch streamread.Fetcher
	// neverRan: under Resume, this projection has no stored replay at all.
	neverRan bool
}

// plan decides the generation and the starting sequence.
func (r *run) plan(ctx context.Context) error {
	live, err := r.target.live(ctx)
	if err != nil {
		return err
	}
	info, err := r.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	prev, found, err := r.states.Load(ctx, r.name)
	if err != nil {
		return err
	}
	resumable := found && (prev.Status == StatusInterrupted || prev.Status == StatusRunning || prev.Status == StatusFailed) && prev.Generation != live
	r.p = Plan{Projection: r.name, LiveGeneration: live, HeadSeq: info.State.LastSeq}
	switch {
	case r.opts.Resume && !resumable:
		r.p.Skip = "nothing to resume"
		r.neverRan = !found
		return nil
	case r.opts.Resume:
		r.p.Resume = true
		r.p.NewGeneration = prev.Generation
		r.p.FromSeq = prev.Position + 1
		r.st = prev
		if ct, ok := r.target.(*countersTarget); ok && prev.Full && ct.recentMax <= buildMax {
			// A full replay's recent-events cache is built in memory, so
			// its resume reads the stream again from the start, into the
			// same shadow: the counters' seen-bits count nothing twice.
			r.p.FromSeq = max(prev.FromSeq, info.State.FirstSeq)
			r.st.Position = r.p.FromSeq - 1
		}
	default:
		if resumable {
			r.abandoned = prev.Generation
		}
		r.p.NewGeneration = max(live, prev.Generation) + 1
		r.p.FromSeq = max(r.opts.FromSeq, info.State.FirstSeq)
		r.st = State{Projection: r.name, Generation: r.p.NewGeneration, FromSeq: r.p.FromSeq, Position: r.p.FromSeq - 1,
			Full: r.opts.FromSeq == 0 && r.opts.FromTime.IsZero()}
	}
	r.target.planned(r.st, r.p)
	r.p.Target = r.target.describe(r.p.NewGeneration)
	if r.p.HeadSeq >= r.p.FromSeq {
		r.p.Events = r.p.HeadSeq - r.p.FromSeq + 1
	}
	r.st.Owner, r.st.StartedAt = r.opts.Owner, time.Now().UnixMilli()
	return nil
}

func (r *run) run(ctx context.Context) error {
	if err := r.states.Claim(ctx, r.st, time.Now()); err != nil {
		return fmt.Errorf("replay %s: %w", r.name, err)
	}
	err := r.replay(ctx)
	if err == nil {
		return nil
	}
	bg := context.WithoutCancel(ctx)
	r.st.Status, r.st.Error = StatusFailed, err.Error()
	if ctx.Err() != nil {
		r.st.Status, r.st.Error, err = StatusInterrupted, "", ctx.Err()
	}
	if serr := r.states.Save(bg, r.st, time.Now()); serr != nil {
		r.deps.Log.Error("save replay state", "projection", r.name, "err", serr)
	}
	return fmt.Errorf("replay %s: %w", r.name, err)
}

// replay fills the shadow, switches, finishes the seam and drops the old
// generation.
func (r *run) replay(ctx context.Context) error {
	if r.abandoned > 0 {
		// An interrupted replay that is not resumed leaves its shadow behind.
		if err := r.target.drop(ctx, r.abandoned); err != nil {
			return err
		}
	}
	apply, err := r.target.open(ctx, r.p.NewGeneration)
	if err != nil {
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{schemas.SubjectAll}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: r.p.FromSeq}
	if !r.opts.FromTime.IsZero() && !r.p.Resume {
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, 0, &r.opts.FromTime
	}
	// The next batches are fetched and decoded while this one is written.
	rd, err := streamread.Start(ctx, r.stream, streamread.Options{
		Config: cfg, Size: r.opts.BatchSize, Ahead: readAhead, Fetch: r.fetch,
		Skipped: func(seq uint64, err error) {
			r.deps.Log.Warn("replay skips an undecodable message", "projection", r.name, "seq", seq, "err", err)
		},
	})
	if err != nil {
		return err
	}
	defer rd.Stop() // on errors; Stop is idempotent
	prog := Progress{Projection: r.name, Start: r.p.FromSeq, Position: r.st.Position, Head: r.p.HeadSeq, Phase: "replaying"}
	var (
		switched  bool
		seam      uint64 // after the switch: every sequence up to here must be in the shadow
		lastSaved = time.Now()
	)
	for {
		n, last, err := r.batch(ctx, rd, apply)
		if err != nil {
			return err
		}
		if n > 0 {
			r.st.Position, prog.Position = last, last
			prog.Applied += n
		}
		if time.Since(lastSaved) > time.Second {
			if err := r.states.Save(ctx, r.st, time.Now()); err != nil {
				return err
			}
			if info, err := r.stream.Info(ctx); err == nil {
				prog.Head = info.State.LastSeq
			}
			lastSaved = time.Now()
		}
		r.progress(prog)
		// An empty fetch alone does not mean caught up: a busy server can
		// leave a wait empty, and switching then would serve a partial
		// generation (and drop the complete one).
		atHead := r.st.Position >= prog.Head
		if n == 0 && !atHead {
			if atHead, err = r.atHead(ctx); err != nil {
				return err
			}
		}
		if !switched && atHead {
			if seam, err = r.switchLive(ctx); err != nil {
				return err
			}
			switched, prog.Phase = true, "catching up after switch"
		}
		// The seam's messages may have been deleted since: then nothing
		// after the position is left to wait for.
		if switched && (r.st.Position >= seam || (n == 0 && atHead)) {
			break
		}
	}
	rd.Stop() // no read during the grace period
	r.st.Status = StatusDone
	if err := r.states.Save(ctx, r.st, time.Now()); err != nil {
		return err
	}
	prog.Phase = "done"
	r.progress(prog)
	return r.dropPrevious(ctx)
}

// batch applies the next batch read; it returns how many events it
// applied (at least 1 when it read any message) and the last sequence read.
func (r *run) batch(ctx context.Context, rd *streamread.Reader, apply func(context.Context, []schemas.Event) error) (int, uint64, error) {
	b, err := rd.Next(ctx)
	if err != nil {
		return 0, 0, err
	}
	if len(b.Events) > 0 {
		if err := consume.ApplyWithRetry(ctx, projectionFunc(apply), b.Events); err != nil {
			return 0, 0, fmt.Errorf("apply: %w", err)
		}
	}
	if b.Last == 0 {
		return 0, 0, nil
	}
	return max(len(b.Events), 1), b.Last, nil
}

// atHead reports whether the stream holds no event after the position.
func (r *run) atHead(ctx context.Context) (bool, error) {
	_, err := r.stream.GetMsg(ctx, r.st.Position+1, jetstream.WithGetMsgSubject(schemas.SubjectAll))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("look past sequence %d: %w", r.st.Position, err)
	}
	return false, nil
}

func (r *run) progress(p Progress) {
	if r.opts.OnProgress != nil {
		r.opts.OnProgress(p)
	}
}

// projectionFunc adapts a write function to consume.Projection.
type projectionFunc func(context.Context, []schemas.Event) error

// Apply calls f.
func (f projectionFunc) Apply(ctx context.Context, evs []schemas.Event) error { return f(ctx, evs) }
