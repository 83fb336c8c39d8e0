package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/kilnhq/kiln/schemas"
)

// ErrReasonRequired is a forced change without a reason.
var ErrReasonRequired = errors.New("a forced change needs a reason")

// Proposal is a candidate version of a type's schema.
type Proposal struct {
	Type   string
	Schema []byte
	// DryRun decides without registering.
	DryRun bool
	// Force registers despite broken rules or failing stored events;
	// Reason is then required and kept with the version.
	Force  bool
	Reason string
}

// Decision is what a proposal came to.
type Decision struct {
	// Registered is true when a new version was appended.
	Registered bool `json:"registered"`
	// Refused is true when the checks failed and the change was not forced.
	Refused bool `json:"refused"`
	// Unchanged is true when the schema equals the latest version.
	Unchanged bool    `json:"unchanged,omitempty"`
	Version   Version `json:"version"`
	// Previous is the latest version before, 0 for a new type.
	Previous int  `json:"previous"`
	Mode     Mode `json:"compatibility"`
	// Changes are the static rules the change breaks in Mode, and the
	// changes no static rule decides (Breaks "UNDECIDED"); these alone do
	// not refuse it: the stored events decide.
	Changes []Change      `json:"changes,omitempty"`
	History HistoryReport `json:"history"`
}

// Stored returns the most recent stored events of a type (newest first
// or oldest first; any order), at most n.
type Stored func(ctx context.Context, eventType string, n int) ([]json.RawMessage, error)

// Propose checks p against the type's latest version (the type's mode, or
// defaultMode) and against its most recent stored events (up to sample,
// from stored), and registers it unless it is refused or a dry run.
func (c *Catalog) Propose(ctx context.Context, p Proposal, defaultMode Mode, stored Stored, sample int) (Decision, error) {
	if err := CheckType(p.Type); err != nil {
		return Decision{}, err
	}
	if p.Force && strings.TrimSpace(p.Reason) == "" {
		return Decision{}, ErrReasonRequired
	}
	compact, err := CheckDocument(ctx, c, p.Type, p.Schema)
	if err != nil {
		return Decision{}, err
	}
	st, err := c.Settings(ctx, p.Type)
	if err != nil {
		return Decision{}, err
	}
	d := Decision{Mode: st.Compatibility}
	if d.Mode == "" {
		d.Mode = defaultMode
	}
	latest, ok, err := c.Latest(ctx, p.Type)
	if err != nil {
		return Decision{}, err
	}
	if ok {
		d.Previous = latest.Version
		if string(latest.Schema) == string(compact) {
			return Decision{Unchanged: true, Version: latest, Previous: latest.Version, Mode: d.Mode}, nil
		}
		if d.Changes, err = Compare(latest.Schema, compact, d.Mode); err != nil {
			return Decision{}, err
		}
	}
	// The stored events against the candidate, compiled beside the latest
	// version of every other type.
	docs, err := c.candidateDocs(ctx, p.Type, compact)
	if err != nil {
		return Decision{}, err
	}
	reg, err := schemas.Compile(docs)
	if err != nil {
		return Decision{}, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	if stored != nil && sample > 0 {
		events, err := stored(ctx, p.Type, sample)
		if err != nil {
			return Decision{}, fmt.Errorf("read stored %s events: %w", p.Type, err)
		}
		d.History = CheckHistory(reg, events, 20)
	}
	broken := d.History.Failing > 0
	for _, ch := range d.Changes {
		broken = broken || ch.Breaks != "UNDECIDED"
	}
	d.Version = Version{Type: p.Type, Version: d.Previous + 1, Schema: compact, Reason: p.Reason, Forced: p.Force && broken}
	if broken && !p.Force {
		d.Refused = true
		return d, nil
	}
	if p.DryRun {
		return d, nil
	}
	v, unchanged, err := c.push(ctx, p.Type, compact, p.Reason, p.Force && broken, d.Previous)
	if err != nil {
		return Decision{}, err
	}
	d.Version, d.Unchanged, d.Registered = v, unchanged, !unchanged
	return d, nil
}

func (c *Catalog) candidateDocs(ctx context.Context, eventType string, doc []byte) (map[string][]byte, error) {
	docs, err := schemas.Embedded()
	if err != nil {
		return nil, err
	}
	latest, err := c.LatestDocuments(ctx)
	if err != nil {
		return nil, err
	}
	maps.Copy(docs, latest)
	docs[eventType] = doc
	return docs, nil
}
