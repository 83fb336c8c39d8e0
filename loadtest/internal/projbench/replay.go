package projbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/kilnhq/kiln/projector/replay"
	"github.com/kilnhq/kiln/schemas"
)

// ReplayOwner names the load tool's replays in the replays collection.
const ReplayOwner = "kiln-load"

// ReplayBatch is the replay engine's default batch size; the baselines
// write in batches of the same size.
const ReplayBatch = 1000

// Replay runs the replay engine for one projection over the whole stream,
// as `kiln replay <projection> --grace 0` would, and returns how many
// events it applied and how long that took: from the call until the
// replay reported itself done, so the drop of the previous generation
// afterwards is not counted. It switches the live generation.
func Replay(ctx context.Context, deps replay.Deps, projection string) (applied int, took time.Duration, err error) {
	var done time.Time
	start := time.Now()
	_, err = replay.Run(ctx, deps, replay.Options{
		Projections: []string{projection}, Grace: 0, Owner: ReplayOwner, BatchSize: ReplayBatch,
		OnProgress: func(p replay.Progress) {
			if p.Phase == "done" {
				applied, done = p.Applied, time.Now()
			}
		},
	})
	if err != nil {
		return applied, 0, fmt.Errorf("replay %s: %w", projection, err)
	}
	if done.IsZero() {
		return applied, 0, fmt.Errorf("replay %s ended without reporting done", projection)
	}
	return applied, done.Sub(start), nil
}

// fillAckTimeout bounds the wait for one window's acknowledgements.
const fillAckTimeout = time.Minute

// FillPrefix starts the event types Fill publishes (kiln_load.page_view,
// …): types no alert rule matches, so filling the stream does not make the
// notifier send anything.
const FillPrefix = "kiln_load."

// Fill publishes n synthesized events, their types under FillPrefix,
// (async, in windows of 1,000, each window's acks awaited) to their
// subjects in the EVENTS stream, as ingest stores them, and returns the
// subjects it wrote to.
func Fill(ctx context.Context, js jetstream.JetStream, n int) ([]string, error) {
	const window = 1000
	events := Synthesize(n, 0, time.Now())
	for _, part := range split(events, window) {
		acks := make([]jetstream.PubAckFuture, 0, len(part))
		for _, ev := range part {
			ev.Seq = 0
			ev.EventType = FillPrefix + ev.EventType
			data, err := json.Marshal(ev)
			if err != nil {
				return nil, fmt.Errorf("encode event: %w", err)
			}
			f, err := js.PublishAsync(schemas.Subject(ev.EventType), data, jetstream.WithMsgID(ev.ID))
			if err != nil {
				return nil, fmt.Errorf("publish: %w", err)
			}
			acks = append(acks, f)
		}
		timeout := time.NewTimer(fillAckTimeout)
		for _, f := range acks {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				timeout.Stop()
				return nil, fmt.Errorf("publish: %w", err)
			case <-timeout.C:
				return nil, fmt.Errorf("publish: no acknowledgement within %s", fillAckTimeout)
			case <-ctx.Done():
				timeout.Stop()
				return nil, ctx.Err()
			}
		}
		timeout.Stop()
	}
	subjects := make([]string, 0, len(Types()))
	for _, t := range Types() {
		subjects = append(subjects, schemas.Subject(FillPrefix+t))
	}
	return subjects, nil
}

// RawIncrAll runs the counters baseline over events in batches of
// ReplayBatch, returns the time it took and deletes its keys.
func RawIncrAll(ctx context.Context, rdb redis.UniversalClient, events []schemas.Event) (took time.Duration, err error) {
	defer func() { err = errors.Join(err, DeleteKeys(context.WithoutCancel(ctx), rdb, CountersPrefix)) }()
	for _, part := range split(events, ReplayBatch) {
		start := time.Now()
		if err := RawIncr(ctx, rdb, part); err != nil {
			return took, err
		}
		took += time.Since(start)
	}
	return took, nil
}

// ReadStream returns the events of the EVENTS stream from its first
// sequence up to its last at the time of the call, at most limit, decoded
// as the projector decodes them (Seq set; undecodable messages and
// messages without id or type skipped).
func ReadStream(ctx context.Context, js jetstream.JetStream, limit int) ([]schemas.Event, error) {
	stream, err := js.Stream(ctx, schemas.StreamName)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", schemas.StreamName, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream info: %w", err)
	}
	head := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, nil
	}
	oc, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{schemas.SubjectAll}})
	if err != nil {
		return nil, fmt.Errorf("ordered consumer: %w", err)
	}
	events := make([]schemas.Event, 0, min(limit, int(info.State.Msgs)))
	var last uint64
	for last < head && len(events) < limit {
		msgs, err := oc.Fetch(min(1000, limit-len(events)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return events, fmt.Errorf("fetch: %w", err)
		}
		n := 0
		for m := range msgs.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			last = meta.Sequence.Stream
			var ev schemas.Event
			if json.Unmarshal(m.Data(), &ev) != nil || ev.ID == "" || ev.EventType == "" {
				continue
			}
			ev.Seq = last
			events = append(events, ev)
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return events, fmt.Errorf("fetch: %w", err)
		}
		if n == 0 {
			break // nothing more within the wait: messages up to head were deleted
		}
	}
	return events, ctx.Err()
}
