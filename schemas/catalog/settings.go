package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Enforcement is what ingest does with an event its type's schema refuses.
type Enforcement string

const (
	// Reject answers 400 (and keeps the event among the rejections).
	Reject Enforcement = "reject"
	// Quarantine answers 202 with "quarantined":true and keeps the event,
	// with its reasons, out of the read models.
	Quarantine Enforcement = "quarantine"
	// Off accepts the event after the envelope's checks alone.
	Off Enforcement = "none"
)

// ParseEnforcement reads an enforcement name (case-insensitive).
func ParseEnforcement(s string) (Enforcement, error) {
	e := Enforcement(strings.ToLower(strings.TrimSpace(s)))
	switch e {
	case Reject, Quarantine, Off:
		return e, nil
	}
	return "", fmt.Errorf("enforcement must be reject, quarantine or none, got %q", s)
}

// Settings are a type's compatibility mode and enforcement; empty fields
// take the deployment's defaults.
type Settings struct {
	Type          string      `json:"type"`
	Compatibility Mode        `json:"compatibility,omitempty"`
	Enforcement   Enforcement `json:"enforcement,omitempty"`
	Updated       time.Time   `json:"updated"`
}

// Settings is a type's stored settings (zero fields when none were set).
func (c *Catalog) Settings(ctx context.Context, eventType string) (Settings, error) {
	if err := CheckType(eventType); err != nil {
		return Settings{}, err
	}
	m, err := c.stream.GetLastMsgForSubject(ctx, settingsPrefix+eventType)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Settings{Type: eventType}, nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf("schema settings %s: %w", eventType, err)
	}
	var st Settings
	if err := json.Unmarshal(m.Data, &st); err != nil {
		return Settings{}, fmt.Errorf("schema settings %s: %w", eventType, err)
	}
	return st, nil
}

// SetSettings records a type's settings (they replace the previous ones).
func (c *Catalog) SetSettings(ctx context.Context, st Settings) error {
	if err := CheckType(st.Type); err != nil {
		return err
	}
	if st.Compatibility != "" {
		if _, err := ParseMode(string(st.Compatibility)); err != nil {
			return err
		}
	}
	if st.Enforcement != "" {
		if _, err := ParseEnforcement(string(st.Enforcement)); err != nil {
			return err
		}
	}
	st.Updated = c.now().UTC()
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("schema settings %s: %w", st.Type, err)
	}
	if _, err := c.js.Publish(ctx, settingsPrefix+st.Type, data); err != nil {
		return fmt.Errorf("schema settings %s: %w", st.Type, err)
	}
	return nil
}
