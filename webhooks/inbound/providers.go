// Package inbound receives signed webhooks: POST /webhooks/{provider}
// verified against the provider's secrets over the raw body, mapped to a
// Kiln event and appended through ingest's durable, idempotent path.
package inbound

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kilnhq/kiln/webhooks/signature"
)

// Config is the inbound side's configuration; ingest reads it from its
// environment. Every field is in docs/configuration.md.
type Config struct {
	// ProvidersFile is a YAML (or JSON) file of providers; empty: none.
	ProvidersFile string `env:"WEBHOOKS_PROVIDERS_FILE"`
	// LegacySecret is the old receiver's one setting: a provider that the
	// file does not list verifies with the old scheme and this secret.
	LegacySecret string `env:"WEBHOOK_SECRET"`
	// Tolerance bounds how far a webhook's timestamp may be from now, in
	// both directions.
	Tolerance time.Duration `env:"WEBHOOK_TOLERANCE" envDefault:"5m"`
}

// Validate reports the first invalid setting, naming its env var.
func (c *Config) Validate() error {
	if c.Tolerance < time.Second {
		return fmt.Errorf("WEBHOOK_TOLERANCE must be at least 1s, got %s", c.Tolerance)
	}
	if c.ProvidersFile != "" {
		if _, err := LoadProviders(c.ProvidersFile); err != nil {
			return fmt.Errorf("WEBHOOKS_PROVIDERS_FILE: %w", err)
		}
	}
	return nil
}

// File is the providers file.
type File struct {
	Providers map[string]ProviderSpec `yaml:"providers"`
}

// ProviderSpec is one provider as written in the file. The schemes it
// accepts are those it has secrets for.
type ProviderSpec struct {
	// Secrets are Standard Webhooks secrets ("whsec_…"); several during a
	// rotation, any one verifies.
	Secrets []string `yaml:"secrets"`
	// LegacySecrets are secrets of the old scheme (X-Signature).
	LegacySecrets []string `yaml:"legacySecrets"`
	Mapping       Mapping  `yaml:"mapping"`
}

// Mapping says how a payload becomes an event. Paths are dotted member
// names into the payload (gjson syntax).
type Mapping struct {
	// EventType is the path of the event type; default "type".
	EventType string `yaml:"eventType"`
	// EventTypePrefix is prepended to the type, e.g. "stripe.".
	EventTypePrefix string `yaml:"eventTypePrefix"`
	// Metadata is the path of the object stored as metadata; default "data".
	Metadata string `yaml:"metadata"`
	// UserID are paths tried in order for the user id; default
	// ["data.customerEmail"]; when none is a non-empty string the provider
	// name is the user id.
	UserID []string `yaml:"userId"`
}

func (m *Mapping) setDefaults() {
	if m.EventType == "" {
		m.EventType = "type"
	}
	if m.Metadata == "" {
		m.Metadata = "data"
	}
	if m.UserID == nil {
		m.UserID = []string{"data.customerEmail"}
	}
}

// Provider is a provider ready to verify.
type Provider struct {
	Name          string
	Secrets       []signature.Secret
	LegacySecrets []string
	Mapping       Mapping
}

var providerName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// LoadProviders reads and checks a providers file.
func LoadProviders(path string) (map[string]*Provider, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseProviders(b)
}

// ParseProviders checks a providers file's text, naming each bad entry.
func ParseProviders(b []byte) (map[string]*Provider, error) {
	var f File
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	out := make(map[string]*Provider, len(f.Providers))
	var errs []error
	for name, spec := range f.Providers {
		if !providerName.MatchString(name) {
			errs = append(errs, fmt.Errorf("provider %q: name must be 1-64 of [A-Za-z0-9_-]", name))
			continue
		}
		p := &Provider{Name: name, LegacySecrets: spec.LegacySecrets, Mapping: spec.Mapping}
		p.Mapping.setDefaults()
		for i, s := range spec.Secrets {
			sec, err := signature.ParseSecret(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("provider %q: secrets[%d]: %w", name, i, err))
				continue
			}
			p.Secrets = append(p.Secrets, sec)
		}
		for i, s := range spec.LegacySecrets {
			if s == "" {
				errs = append(errs, fmt.Errorf("provider %q: legacySecrets[%d] is empty", name, i))
			}
		}
		if len(spec.Secrets) == 0 && len(spec.LegacySecrets) == 0 {
			errs = append(errs, fmt.Errorf("provider %q: needs secrets or legacySecrets", name))
		}
		out[name] = p
	}
	return out, errors.Join(errs...)
}
