package catalog

import (
	"errors"
	"fmt"
)

// Config is the deployment's schema policy, read from the environment by
// every role that validates or registers schemas.
type Config struct {
	// Compatibility is the mode of a type with none of its own.
	Compatibility string `env:"SCHEMAS_COMPATIBILITY" envDefault:"BACKWARD"`
	// Enforcement is what ingest does with an event its type's schema
	// refuses, for a type with no enforcement of its own.
	Enforcement string `env:"SCHEMAS_ENFORCEMENT" envDefault:"reject"`
	// UnknownTypes is what ingest does with an event of a type that has no
	// schema of its own: accept it after the envelope's checks, or reject it.
	UnknownTypes string `env:"SCHEMAS_UNKNOWN_TYPES" envDefault:"accept"`
	// CheckSample is how many of a type's most recent stored events a new
	// version is checked against.
	CheckSample int `env:"SCHEMAS_CHECK_SAMPLE" envDefault:"10000"`
}

// Validate names every invalid setting.
func (c Config) Validate() error {
	var errs []error
	if _, err := ParseMode(c.Compatibility); err != nil {
		errs = append(errs, fmt.Errorf("SCHEMAS_COMPATIBILITY: %w", err))
	}
	if _, err := ParseEnforcement(c.Enforcement); err != nil {
		errs = append(errs, fmt.Errorf("SCHEMAS_ENFORCEMENT: %w", err))
	}
	if u := c.UnknownTypes; u != "" && u != "accept" && u != "reject" {
		errs = append(errs, fmt.Errorf("SCHEMAS_UNKNOWN_TYPES must be accept or reject, got %q", u))
	}
	if c.CheckSample < 0 || c.CheckSample > 100_000 {
		errs = append(errs, fmt.Errorf("SCHEMAS_CHECK_SAMPLE must be between 0 and 100000, got %d", c.CheckSample))
	}
	return errors.Join(errs...)
}

// Mode is the parsed Compatibility (BACKWARD when invalid: Validate first).
func (c Config) Mode() Mode {
	if m, err := ParseMode(c.Compatibility); err == nil {
		return m
	}
	return Backward
}

// DefaultEnforcement is the parsed Enforcement (reject when invalid).
func (c Config) DefaultEnforcement() Enforcement {
	if e, err := ParseEnforcement(c.Enforcement); err == nil {
		return e
	}
	return Reject
}

// RejectUnknownTypes reports whether events of types with no schema of
// their own are refused (SCHEMAS_UNKNOWN_TYPES=reject).
func (c Config) RejectUnknownTypes() bool { return c.UnknownTypes == "reject" }

// EnforcementOf is eventType's enforcement in snap: its own, else def.
func (s *Snapshot) EnforcementOf(eventType string, def Enforcement) Enforcement {
	if st, ok := s.Settings[eventType]; ok && st.Enforcement != "" {
		return st.Enforcement
	}
	return def
}
