package testsupport

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerSettled reports whether the durable consumer of stream has been
// handed every message stored so far on its filter and has none left to
// ack: after it, what the consumer's application did with them is done.
//
// NumPending and NumAckPending alone are not enough. The server counts a
// new message for its consumers on a goroutine of its own, after it acked
// the publish, so a consumer read right after a publish may report
// nothing pending and nothing to ack while the message was never handed
// to it. ConsumerSettled also requires the consumer's last delivered
// stream sequence to have reached the stream's last message on its filter.
func ConsumerSettled(ctx context.Context, js jetstream.JetStream, stream, durable string) (bool, error) {
	c, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		return false, fmt.Errorf("consumer %s/%s: %w", stream, durable, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("consumer %s/%s: %w", stream, durable, err)
	}
	if info.NumPending != 0 || info.NumAckPending != 0 {
		return false, nil
	}
	last, err := lastStored(ctx, js, stream, info.Config)
	if err != nil {
		return false, err
	}
	return info.Delivered.Stream >= last, nil
}

// lastStored is the sequence of the stream's last message a consumer with
// cfg's filters would be handed (0: none).
func lastStored(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	filters := cfg.FilterSubjects
	if cfg.FilterSubject != "" {
		filters = append(filters, cfg.FilterSubject)
	}
	if len(filters) == 0 {
		info, err := s.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("stream %s: %w", stream, err)
		}
		return info.State.LastSeq, nil
	}
	var last uint64
	for _, f := range filters {
		m, err := s.GetLastMsgForSubject(ctx, f)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return 0, fmt.Errorf("stream %s: last message on %s: %w", stream, f, err)
		default:
			last = max(last, m.Sequence)
		}
	}
	return last, nil
}
