// Package streamread reads the EVENTS stream in order for replays and
// rebuilds: a goroutine streams it through one ordered consumer (one
// server-side consumer for the whole read, its messages pulled ahead) and
// decodes batches while the caller applies the batches before, at most a
// few batches ahead (bounded memory).
package streamread

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

// Batch is one read of up to Size messages, decoded.
type Batch struct {
	// Events are the decodable events, in stream order, Seq set.
	Events []schemas.Event
	// Last is the last stream sequence read, undecodable messages
	// included; 0 when the read came back empty (Wait passed with none).
	Last uint64
}

// Fetcher stands between the reader and each of its reads (tests: a read
// that comes back empty, as on a busy server); read is the reader's own.
type Fetcher func(read func() (Batch, error)) (Batch, error)

// Options say what to read and how far ahead.
type Options struct {
	Config jetstream.OrderedConsumerConfig
	Size   int           // messages per batch (default 1,000)
	Ahead  int           // batches decoded ahead of the caller (default 2)
	Wait   time.Duration // how long a read waits for a first message (default 500ms)
	Fetch  Fetcher       // nil: the reader's own reads
	// Skipped, if set, is told of every message that does not decode
	// (from the reader's goroutine).
	Skipped func(seq uint64, err error)
}

// gap is how long a batch being filled waits for the next message before
// it is handed over as it is: pulled messages arrive in a stream, so a
// longer gap means the reader caught up.
const gap = 20 * time.Millisecond

type result struct {
	b   Batch
	err error
}

// Reader is a running read of the stream.
type Reader struct {
	out    chan result
	cancel context.CancelFunc
	done   chan struct{}
}

// Start creates the ordered consumer and starts reading.
//
// The reads go through the consumer's Messages, not Fetch: an ordered
// consumer creates a new server-side consumer for every Fetch, and each
// creation counts the messages pending after its start, a cost that grows
// with the stream (a third of a replay's CPU at 50,000 events).
func Start(ctx context.Context, stream jetstream.Stream, o Options) (*Reader, error) {
	if o.Size <= 0 {
		o.Size = 1000
	}
	if o.Ahead <= 0 {
		o.Ahead = 2
	}
	if o.Wait <= 0 {
		o.Wait = 500 * time.Millisecond
	}
	oc, err := stream.OrderedConsumer(ctx, o.Config)
	if err != nil {
		return nil, fmt.Errorf("ordered consumer: %w", err)
	}
	it, err := oc.Messages(jetstream.PullMaxMessages(2 * o.Size))
	if err != nil {
		return nil, fmt.Errorf("ordered consumer: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Reader{out: make(chan result, o.Ahead), cancel: cancel, done: make(chan struct{})}
	go r.read(ctx, it, o)
	return r, nil
}

// Next returns the next batch (an empty one when a read found nothing
// within Wait), or the read's error.
func (r *Reader) Next(ctx context.Context) (Batch, error) {
	select {
	case res, ok := <-r.out:
		if !ok {
			return Batch{}, context.Canceled
		}
		return res.b, res.err
	case <-ctx.Done():
		return Batch{}, ctx.Err()
	}
}

// Stop ends the read and waits for its goroutine.
func (r *Reader) Stop() {
	r.cancel()
	<-r.done
}

func (r *Reader) read(ctx context.Context, it jetstream.MessagesContext, o Options) {
	defer close(r.done)
	defer close(r.out)
	defer it.Stop()
	context.AfterFunc(ctx, it.Stop) // a Next waiting for messages returns at once
	read := func() (Batch, error) { return next(ctx, it, o) }
	for ctx.Err() == nil {
		var b Batch
		var err error
		if o.Fetch != nil {
			b, err = o.Fetch(read)
		} else {
			b, err = read()
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case r.out <- result{b: b, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// next reads up to o.Size messages: the first waits up to o.Wait, the
// others up to gap each.
func next(ctx context.Context, it jetstream.MessagesContext, o Options) (Batch, error) {
	b := Batch{Events: make([]schemas.Event, 0, o.Size)}
	wait := o.Wait
	for n := 0; n < o.Size; n++ {
		m, err := it.Next(jetstream.NextMaxWait(wait))
		if errors.Is(err, nats.ErrTimeout) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return b, nil
			}
			return Batch{}, fmt.Errorf("read stream: %w", err)
		}
		wait = gap
		ev, meta, err := schemas.DecodeMsg(m)
		if meta != nil {
			b.Last = meta.Sequence.Stream
		}
		if err != nil {
			if o.Skipped != nil {
				o.Skipped(b.Last, err)
			}
			continue
		}
		b.Events = append(b.Events, ev)
	}
	return b, nil
}
