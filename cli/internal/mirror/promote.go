package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/cli/internal/ledgersettle"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/idledger"
)

// ErrPrimaryAnswers is Promote's refusal while the primary's JetStream
// still answers through the leaf node: two writable copies would diverge.
var ErrPrimaryAnswers = errors.New("the primary's JetStream still answers")

// ErrNothingToPromote: no stream of this deployment is a mirror.
var ErrNothingToPromote = errors.New("no stream here is a mirror")

// PromoteOptions configure Promote.
type PromoteOptions struct {
	// Force promotes even while the primary answers.
	Force bool
	// Probe bounds the check that the primary is gone (default 2s).
	Probe time.Duration
	// Log receives progress; nil discards it.
	Log *slog.Logger
}

// Promoted is what Promote did.
type Promoted struct {
	// Streams are the mirrors as they stood when promoted: LastSeq of
	// EVENTS is the recovery point in the primary's sequence.
	Streams []State
	Ledger  ledgersettle.Report
	Took    time.Duration
}

// Promote turns every mirror of the deployment nc is connected to into a
// normal stream with Kiln's subjects, then settles the id ledger against
// the promoted EVENTS. It refuses while the primary's domain answers,
// unless o.Force.
func Promote(ctx context.Context, nc *nats.Conn, o PromoteOptions) (*Promoted, error) {
	start := time.Now()
	log := orDiscard(o.Log)
	if o.Probe == 0 {
		o.Probe = 2 * time.Second
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("promote: JetStream: %w", err)
	}
	states, err := Status(ctx, nc)
	if err != nil {
		return nil, fmt.Errorf("promote: %w", err)
	}
	if !slices.ContainsFunc(states, func(s State) bool { return s.Stream == schemas.StreamName }) {
		return nil, fmt.Errorf("promote: this deployment has no stream %s: is --nats the DR deployment?", schemas.StreamName)
	}
	var mirrors []State
	for _, s := range states {
		if s.Mirror {
			mirrors = append(mirrors, s)
		}
	}
	if len(mirrors) == 0 {
		return nil, fmt.Errorf("promote: %w (promoted already?)", ErrNothingToPromote)
	}
	if !o.Force {
		for _, s := range mirrors {
			if s.Domain == "" {
				continue
			}
			if _, err := nc.Request(apiPrefix(s.Domain)+".INFO", nil, o.Probe); err == nil {
				return nil, fmt.Errorf("promote: %w (domain %s, through the leaf node): stop the primary or cut the link first, or pass --force", ErrPrimaryAnswers, s.Domain)
			}
		}
	}
	for _, s := range mirrors {
		if err := promoteStream(ctx, js, s.Stream); err != nil {
			return nil, err
		}
		log.Info("mirror promoted", "stream", s.Stream, "messages", s.Messages, "lastSeq", s.LastSeq, "lag", s.Lag)
	}
	p := &Promoted{Streams: mirrors}
	events, err := js.Stream(ctx, schemas.StreamName)
	if err != nil {
		return p, fmt.Errorf("promote: %w", err)
	}
	if _, err := js.Stream(ctx, idledger.Stream); err == nil {
		if p.Ledger, err = ledgersettle.Settle(ctx, js, events, ledgersettle.Options{AddUnrecorded: true, Log: log}); err != nil {
			return p, fmt.Errorf("promote: %w", err)
		}
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return p, fmt.Errorf("promote: %w", err)
	}
	p.Took = time.Since(start)
	return p, nil
}

// promoteStream removes the mirror from the stream's configuration and
// gives it Kiln's subjects, then waits until the server reports no mirror.
func promoteStream(ctx context.Context, js jetstream.JetStream, name string) error {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("promote %s: %w", name, err)
	}
	cfg := s.CachedInfo().Config
	if cfg.Mirror == nil {
		return nil
	}
	domain := domainOf(cfg.Mirror)
	cfg.Mirror = nil
	cfg.Subjects = subjects(name)
	cfg.Description = strings.TrimSpace(strings.TrimSuffix(cfg.Description, "(DR mirror of domain "+domain+")"))
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("promote %s (nats-server 2.12 or later promotes a mirror): %w", name, err)
	}
	_, err = backoff.Retry(ctx, func() (struct{}, error) {
		info, err := s.Info(ctx)
		if err != nil {
			return struct{}{}, err
		}
		if info.Mirror != nil || info.Config.Mirror != nil {
			return struct{}{}, fmt.Errorf("stream %s still reports a mirror", name)
		}
		return struct{}{}, nil
	}, backoff.WithBackOff(backoff.NewConstantBackOff(50*time.Millisecond)), backoff.WithMaxElapsedTime(30*time.Second))
	if err != nil {
		return fmt.Errorf("promote %s: %w", name, err)
	}
	return nil
}
