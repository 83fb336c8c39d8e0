// Package streamread reads the EVENTS stream in order for replays and
// rebuilds: a goroutine fetches large batches with one ordered consumer and
// decodes them while the caller applies the batches before, at most a few
// batches ahead (bounded memory).
package streamread

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

// Batch is one fetch, decoded.
type Batch struct {
	// Events are the decodable events, in stream order, Seq set.
	Events []schemas.Event
	// Last is the last stream sequence read, undecodable messages
	// included; 0 when the fetch came back empty.
	Last uint64
}

// Fetcher is one fetch of up to n messages.
type Fetcher func(c jetstream.Consumer, n int) (jetstream.MessageBatch, error)

// Options say what to read and how far ahead.
type Options struct {
	Config jetstream.OrderedConsumerConfig
	Size   int           // messages per fetch (default 1,000)
	Ahead  int           // batches decoded ahead of the caller (default 2)
	Wait   time.Duration // how long a fetch waits for messages (default 500ms)
	Fetch  Fetcher       // nil: Consumer.Fetch with Wait
	// Skipped, if set, is told of every message that does not decode
	// (from the reader's goroutine).
	Skipped func(seq uint64, err error)
}

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
	if o.Fetch == nil {
		wait := o.Wait
		o.Fetch = func(c jetstream.Consumer, n int) (jetstream.MessageBatch, error) {
			return c.Fetch(n, jetstream.FetchMaxWait(wait))
		}
	}
	oc, err := stream.OrderedConsumer(ctx, o.Config)
	if err != nil {
		return nil, fmt.Errorf("ordered consumer: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Reader{out: make(chan result, o.Ahead), cancel: cancel, done: make(chan struct{})}
	go r.read(ctx, oc, o)
	return r, nil
}

// Next returns the next batch (an empty one when a fetch found nothing
// within its wait).
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

// Stop ends the read and waits for its goroutine; calling it again does
// nothing.
func (r *Reader) Stop() {
	r.cancel()
	<-r.done
}

func (r *Reader) read(ctx context.Context, oc jetstream.Consumer, o Options) {
	defer close(r.done)
	defer close(r.out)
	for ctx.Err() == nil {
		b, err := fetch(ctx, oc, o)
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

func fetch(ctx context.Context, oc jetstream.Consumer, o Options) (Batch, error) {
	msgs, err := o.Fetch(oc, o.Size)
	if err != nil {
		return Batch{}, fmt.Errorf("fetch: %w", err)
	}
	b := Batch{Events: make([]schemas.Event, 0, o.Size)}
	for m := range msgs.Messages() {
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
	if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
		return Batch{}, fmt.Errorf("fetch: %w", err)
	}
	return b, nil
}
