// Package tail follows the EVENTS stream with a JetStream ordered
// consumer: every stored event matching the subjects, in stream order, from
// a given sequence or from now on, with no gap and no duplicate (the
// ordered consumer recreates itself at the next sequence after a hiccup).
package tail

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

// Options say what to follow.
type Options struct {
	// Subjects filter the stream; empty follows every event.
	Subjects []string
	// After, when Resume is set, starts with the first event after this
	// sequence; otherwise only events stored from now on are read.
	After  uint64
	Resume bool
	// PullMax bounds how many messages are fetched ahead of fn (memory).
	PullMax int
	// Started, when set, is called once the consumer exists: events stored
	// after it returns are delivered.
	Started func()
}

// Follow calls fn for each event, in stream order, until ctx is done (it
// then returns ctx's error) or fn returns an error (returned as is).
// Messages that are not Kiln events are skipped.
func Follow(ctx context.Context, js jetstream.JetStream, o Options, fn func(schemas.Event) error) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: o.Subjects, DeliverPolicy: jetstream.DeliverNewPolicy}
	if len(cfg.FilterSubjects) == 0 {
		cfg.FilterSubjects = []string{schemas.SubjectAll}
	}
	if o.Resume {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, o.After+1
	}
	cons, err := js.OrderedConsumer(ctx, schemas.StreamName, cfg)
	if err != nil {
		return fmt.Errorf("tail %v: %w", cfg.FilterSubjects, err)
	}
	pull := o.PullMax
	if pull <= 0 {
		pull = 256
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(pull))
	if err != nil {
		return fmt.Errorf("tail %v: %w", cfg.FilterSubjects, err)
	}
	if o.Started != nil {
		o.Started()
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer func() {
		stop()
		it.Stop()
	}()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return fmt.Errorf("tail %v: iterator closed", cfg.FilterSubjects)
			}
			return fmt.Errorf("tail %v: %w", cfg.FilterSubjects, err)
		}
		ev, _, err := schemas.DecodeMsg(msg)
		if err != nil {
			continue
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
}
