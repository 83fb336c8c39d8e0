// Package baseline measures what the NATS server does without Kiln in
// front of it: raw JetStream publishes of the same envelope bytes ingest
// stores, with a unique Nats-Msg-Id each, to a subject of the EVENTS stream.
package baseline

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

// Options configure a Publisher.
type Options struct {
	URL     string
	Subject string
	Data    []byte // the message body of every publish
	UserID  string // the Kiln-User-Id header, as ingest sets it
	// MaxPending caps unacknowledged async publishes.
	MaxPending int
	// Timeout bounds every publish's acknowledgement.
	Timeout time.Duration
}

// Publisher publishes baseline messages over one connection, like ingest.
// It is safe for concurrent use.
type Publisher struct {
	opts   Options
	nc     *nats.Conn
	js     jetstream.JetStream
	prefix string
	seq    atomic.Uint64
}

// Connect connects to NATS and checks that the EVENTS stream exists, since
// the baseline publishes into it.
func Connect(ctx context.Context, opts Options) (*Publisher, error) {
	nc, err := nats.Connect(opts.URL, nats.Name("kiln-load baseline"))
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", opts.URL, err)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(opts.MaxPending),
		jetstream.WithPublishAsyncTimeout(opts.Timeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if _, err := js.Stream(ctx, schemas.StreamName); err != nil {
		nc.Close()
		return nil, fmt.Errorf("stream %s on %s: %w (is Kiln running against this NATS server?)", schemas.StreamName, opts.URL, err)
	}
	p := &Publisher{opts: opts, nc: nc, js: js,
		prefix: "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"}
	return p, nil
}

// Close closes the connection.
func (p *Publisher) Close() { p.nc.Close() }

// msg builds the next message: same body, fresh Nats-Msg-Id.
func (p *Publisher) msg() *nats.Msg {
	m := &nats.Msg{Subject: p.opts.Subject, Data: p.opts.Data, Header: nats.Header{}}
	m.Header.Set(schemas.HeaderMsgID, p.prefix+strconv.FormatUint(p.seq.Add(1), 36))
	m.Header.Set(schemas.HeaderUserID, p.opts.UserID)
	return m
}

// Sync publishes one message and waits for its acknowledgement.
func (p *Publisher) Sync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	if _, err := p.js.PublishMsg(ctx, p.msg(), jetstream.WithExpectStream(schemas.StreamName)); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// Window publishes n messages asynchronously and then awaits all their
// acknowledgements. It returns how many were acknowledged.
func (p *Publisher) Window(ctx context.Context, n int) (int, error) {
	futures := make([]jetstream.PubAckFuture, 0, n)
	var firstErr error
	for range n {
		f, err := p.js.PublishMsgAsync(p.msg(), jetstream.WithExpectStream(schemas.StreamName))
		if err != nil {
			firstErr = keepFirst(firstErr, fmt.Errorf("publish async: %w", err))
			continue
		}
		futures = append(futures, f)
	}
	acked := 0
	for _, f := range futures {
		select {
		case <-f.Ok():
			acked++
		case err := <-f.Err():
			firstErr = keepFirst(firstErr, fmt.Errorf("ack: %w", err))
		case <-ctx.Done():
			return acked, ctx.Err()
		}
	}
	return acked, firstErr
}

// Purge removes the baseline's messages from the stream.
func (p *Publisher) Purge(ctx context.Context) error {
	return p.PurgeSubject(ctx, p.opts.Subject)
}

// keepFirst returns first unless it is nil.
func keepFirst(first, next error) error {
	if first != nil {
		return first
	}
	return next
}
