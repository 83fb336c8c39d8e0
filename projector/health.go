package projector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kilnhq/kiln/projector/internal/consume"
	"github.com/kilnhq/kiln/projector/status"
)

// dependencyOf names the store a projection writes.
func dependencyOf(projection string) string {
	switch projection {
	case Counters, Recent:
		return "redis"
	default:
		return "mongodb"
	}
}

// healthOf returns the outage tracker of a projection's consumer loop.
func (s *Service) healthOf(projection string) *consume.Health {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if s.health == nil {
		s.health = map[string]*consume.Health{}
	}
	h := s.health[projection]
	if h == nil {
		h = &consume.Health{}
		s.health[projection] = h
	}
	return h
}

// ProjectionHealth is one projection's store health in this process.
type ProjectionHealth struct {
	Projection string
	Dependency string
	consume.HealthState
}

// Health returns the store health of every projection this process runs,
// by name.
func (s *Service) Health() []ProjectionHealth {
	s.healthMu.Lock()
	names := make([]string, 0, len(s.health))
	for name := range s.health {
		names = append(names, name)
	}
	s.healthMu.Unlock()
	slices.Sort(names)
	out := make([]ProjectionHealth, 0, len(names))
	for _, name := range names {
		out = append(out, ProjectionHealth{Projection: name, Dependency: dependencyOf(name), HealthState: s.healthOf(name).State()})
	}
	return out
}

// stalledErrors are readiness lines for the projections waiting for their
// store: "<projection> waits for <dependency>: …" (the dependency first,
// no addresses: httpserver shows only the text before the colon).
func (s *Service) stalledErrors(now time.Time) error {
	var errs []error
	for _, h := range s.Health() {
		if h.Stalled {
			errs = append(errs, fmt.Errorf("%s waits for %s: for %s, %d attempts",
				h.Projection, h.Dependency, now.Sub(h.Since).Round(time.Second), h.Failures))
		}
	}
	return errors.Join(errs...)
}

// Ready reports whether NATS, MongoDB and Redis answer and no projection
// waits for its store. Each failed dependency is one line, named first.
func (s *Service) Ready(ctx context.Context) error {
	var errs []error
	if _, err := s.stream.Info(ctx); err != nil {
		errs = append(errs, fmt.Errorf("jetstream: %w", err))
	}
	if err := s.deps.Mongo.Client().Ping(ctx, nil); err != nil {
		errs = append(errs, fmt.Errorf("mongodb: %w", err))
	}
	if err := s.deps.Redis.Ping(ctx).Err(); err != nil {
		errs = append(errs, fmt.Errorf("redis: %w", err))
	}
	errs = append(errs, s.stalledErrors(time.Now()))
	return errors.Join(errs...)
}

// statusEvery is how often each projection's status report is renewed
// (well inside status.TTL); a change is published at the next tick.
const statusEvery = 10 * time.Second

// publishStatus publishes the projections' store health to the status
// bucket, for `kiln projections`: on change, and every statusEvery.
func (s *Service) publishStatus(ctx context.Context, now time.Time) {
	if s.statusKV == nil {
		kv, err := status.Open(ctx, s.deps.JetStream)
		if err != nil {
			s.warns.warn(s.deps.Log, "open projector status bucket", "err", err)
			return
		}
		s.statusKV = kv
	}
	if s.statusSent == nil {
		s.statusSent = map[string]statusSent{}
	}
	for _, h := range s.Health() {
		last := s.statusSent[h.Projection]
		if last.stalled == h.Stalled && now.Sub(last.at) < statusEvery {
			continue
		}
		r := status.Report{
			Projection: h.Projection, Process: s.owner, Dependency: h.Dependency, Stalled: h.Stalled,
			Failures: h.Failures, At: now,
		}
		if h.Stalled {
			r.Since, r.LastError = h.Since, h.LastErr
		}
		if err := status.Publish(ctx, s.statusKV, r); err != nil {
			s.warns.warn(s.deps.Log, "publish projector status", "err", err)
			return
		}
		s.statusSent[h.Projection] = statusSent{stalled: h.Stalled, at: now}
	}
}

// statusSent is the last report published for a projection.
type statusSent struct {
	stalled bool
	at      time.Time
}
