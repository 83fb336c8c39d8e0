// Package projlag measures how far Kiln's projections are behind the
// EVENTS stream, in time: for each projector durable consumer, the age of
// the oldest stream message it has not acknowledged yet (0 when it has
// acknowledged everything). Messages are acknowledged only after their
// write is durable, so this is the lag of the read model itself.
package projlag

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

// Prefix is the name prefix of the projector's durable consumers.
const Prefix = "projector-"

// Sampler reads the projections' lag.
type Sampler struct {
	stream jetstream.Stream
}

// New returns a Sampler for the EVENTS stream.
func New(ctx context.Context, js jetstream.JetStream) (*Sampler, error) {
	s, err := js.Stream(ctx, schemas.StreamName)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", schemas.StreamName, err)
	}
	return &Sampler{stream: s}, nil
}

// Sample returns the lag of every projector consumer, by projection name
// (the consumer name without Prefix), as of now.
func (s *Sampler) Sample(ctx context.Context) (map[string]time.Duration, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream info: %w", err)
	}
	now := time.Now()
	out := map[string]time.Duration{}
	list := s.stream.ListConsumers(ctx)
	for ci := range list.Info() {
		name, ok := strings.CutPrefix(ci.Config.Durable, Prefix)
		if !ok {
			continue
		}
		if ci.NumPending == 0 && ci.NumAckPending == 0 {
			out[name] = 0
			continue
		}
		oldest := max(ci.AckFloor.Stream+1, info.State.FirstSeq)
		msg, err := s.stream.GetMsg(ctx, oldest)
		if err != nil {
			return nil, fmt.Errorf("message %d (oldest not applied by %s): %w", oldest, name, err)
		}
		out[name] = max(now.Sub(msg.Time), 0)
	}
	if err := list.Err(); err != nil {
		return nil, fmt.Errorf("list consumers: %w", err)
	}
	return out, nil
}
