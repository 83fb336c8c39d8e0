// Package mirror keeps a disaster-recovery copy of Kiln's JetStream state
// in a second NATS deployment and promotes it when the primary is lost.
//
// # Topology
//
// The DR deployment is a separate nats-server (or cluster) with a
// JetStream domain of its own, connected to the primary by a leaf node
// connection; the primary has a JetStream domain too. On the DR side each
// stream a backup holds (backup.Parts: EVENTS, the id ledger KV_EVENT_IDS,
// the schema registry KILN_SCHEMAS) is a JetStream mirror of the primary's
// stream of the same name, reached through the primary's domain
// (StreamSource.Domain, i.e. External.APIPrefix "$JS.<domain>.API"). A
// mirror keeps the source's sequences and timestamps, so the id ledger's
// sequences stay valid.
//
// # Promotion
//
// nats-server 2.12 and later turn a mirror into a normal stream when its
// configuration is updated without the mirror (Promote does this, and gives
// the stream Kiln's subjects back). Each stream was mirrored on its own, so
// at the cut the ledger and EVENTS may have stopped at different points:
// Promote then settles the ledger against the promoted EVENTS (package ledgersettle),
// so that every id whose event is in the stream answers duplicate and no id
// whose event is missing does. What the primary acknowledged but the mirror
// had not received is the recovery point: it is lost.
package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/cli/internal/backup"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/schemas/idledger"
)

// Parts are the mirrored streams: what a backup holds, in the same order.
func Parts() []backup.Part { return backup.Parts() }

// subjects are the subjects a promoted stream listens on: Kiln's own
// definitions of each stream, not the (unreachable) primary's.
func subjects(stream string) []string {
	switch stream {
	case schemas.StreamName:
		return schemas.StreamConfig(schemas.StreamOptions{}).Subjects
	case idledger.Stream:
		return []string{idledger.SubjectPrefix + ">"}
	case catalog.StreamName:
		return catalog.StreamConfig(schemas.StreamOptions{}).Subjects
	}
	return nil
}

// Options configure Create.
type Options struct {
	// PrimaryDomain is the primary's JetStream domain.
	PrimaryDomain string
	// Replicas of each mirror; 0 takes the primary stream's.
	Replicas int
	// Log receives progress; nil discards it.
	Log *slog.Logger
}

// Created is one stream of Create's report.
type Created struct {
	Stream string
	Role   string
	// Existed: the mirror was there already (Create changes nothing then).
	Existed bool
	// Skipped: the primary has no such stream (e.g. no schema registered).
	Skipped bool
	// PrimaryLastSeq is the primary stream's last sequence when read.
	PrimaryLastSeq uint64
}

// Create makes every part a mirror, in the deployment nc is connected to,
// of the stream of the same name in the primary's domain. It is idempotent:
// a mirror of the same source is left as it is; a stream of that name that
// is not one is an error.
func Create(ctx context.Context, nc *nats.Conn, o Options) ([]Created, error) {
	if o.PrimaryDomain == "" {
		return nil, errors.New("mirror: the primary's JetStream domain is required")
	}
	log := orDiscard(o.Log)
	src, err := jetstream.NewWithDomain(nc, o.PrimaryDomain)
	if err != nil {
		return nil, fmt.Errorf("mirror: JetStream of domain %s: %w", o.PrimaryDomain, err)
	}
	dst, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("mirror: JetStream: %w", err)
	}
	if err := sameDomain(ctx, dst, o.PrimaryDomain); err != nil {
		return nil, err
	}
	var out []Created
	for _, p := range Parts() {
		c := Created{Stream: p.Stream, Role: p.Role}
		s, err := src.Stream(ctx, p.Stream)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound) && !p.Required:
			log.Info("the primary has no such stream; not mirrored", "stream", p.Stream)
			c.Skipped = true
			out = append(out, c)
			continue
		case err != nil:
			return out, fmt.Errorf("mirror: stream %s in domain %s (is the leaf node connection up, and the domain right?): %w", p.Stream, o.PrimaryDomain, err)
		}
		info := s.CachedInfo()
		c.PrimaryLastSeq = info.State.LastSeq
		if have, err := dst.Stream(ctx, p.Stream); err == nil {
			m := have.CachedInfo().Config.Mirror
			if m == nil || m.Name != p.Stream || m.External == nil || m.External.APIPrefix != apiPrefix(o.PrimaryDomain) {
				return out, fmt.Errorf("mirror: this deployment holds a stream %s that is not a mirror of %s in domain %s: is --nats the DR deployment?", p.Stream, p.Stream, o.PrimaryDomain)
			}
			c.Existed = true
			out = append(out, c)
			continue
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return out, fmt.Errorf("mirror: look up stream %s: %w", p.Stream, err)
		}
		if _, err := dst.CreateStream(ctx, mirrorConfig(info.Config, o)); err != nil {
			return out, fmt.Errorf("mirror: create mirror %s: %w", p.Stream, err)
		}
		log.Info("mirror created", "stream", p.Stream, "primaryDomain", o.PrimaryDomain, "primaryLastSeq", c.PrimaryLastSeq)
		out = append(out, c)
	}
	return out, nil
}

// mirrorConfig is the primary's configuration, as a mirror: the same
// limits, no subjects, the mirror source.
func mirrorConfig(cfg jetstream.StreamConfig, o Options) jetstream.StreamConfig {
	m := cfg
	m.Subjects = nil
	m.Sources = nil
	m.Mirror = &jetstream.StreamSource{Name: cfg.Name, Domain: o.PrimaryDomain}
	m.Description = strings.TrimSpace(cfg.Description + " (DR mirror of domain " + o.PrimaryDomain + ")")
	if o.Replicas > 0 {
		m.Replicas = o.Replicas
	}
	m.Metadata = maps.Clone(cfg.Metadata)
	for k := range m.Metadata {
		if strings.HasPrefix(k, "_nats.") { // the server's own
			delete(m.Metadata, k)
		}
	}
	return m
}

func apiPrefix(domain string) string { return "$JS." + domain + ".API" }

// domainOf is the domain a mirror's source is in, from its API prefix.
func domainOf(m *jetstream.StreamSource) string {
	if m == nil || m.External == nil {
		return ""
	}
	d, ok := strings.CutPrefix(m.External.APIPrefix, "$JS.")
	if !ok {
		return ""
	}
	d, _ = strings.CutSuffix(d, ".API")
	return d
}

// sameDomain refuses to mirror a domain into itself: --nats must be the
// DR deployment, not the primary.
func sameDomain(ctx context.Context, js jetstream.JetStream, primary string) error {
	ai, err := js.AccountInfo(ctx)
	if err != nil {
		return fmt.Errorf("mirror: JetStream of this deployment: %w", err)
	}
	if ai.Domain == primary {
		return fmt.Errorf("mirror: --nats is connected to domain %s, the primary's: connect to the DR deployment", primary)
	}
	return nil
}

// State is a mirror's progress.
type State struct {
	Stream string
	Role   string
	// Mirror is false once the stream was promoted (or was never a mirror).
	Mirror bool
	Domain string
	// Messages and LastSeq are the DR stream's.
	Messages, LastSeq uint64
	LastTime          time.Time
	// Lag is how many messages the mirror knew it was behind at its last
	// contact with the source, Active how long ago that contact was
	// (-1: never).
	Lag    uint64
	Active time.Duration
}

// Status reads every part's state in the deployment nc is connected to;
// absent streams are left out.
func Status(ctx context.Context, nc *nats.Conn) ([]State, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("mirror: JetStream: %w", err)
	}
	var out []State
	for _, p := range Parts() {
		s, err := js.Stream(ctx, p.Stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("mirror: stream %s: %w", p.Stream, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("mirror: stream %s: %w", p.Stream, err)
		}
		st := State{Stream: p.Stream, Role: p.Role, Mirror: info.Config.Mirror != nil, Domain: domainOf(info.Config.Mirror),
			Messages: info.State.Msgs, LastSeq: info.State.LastSeq, LastTime: info.State.LastTime, Active: -1}
		if info.Mirror != nil {
			st.Lag, st.Active = info.Mirror.Lag, info.Mirror.Active
		}
		out = append(out, st)
	}
	return out, nil
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
