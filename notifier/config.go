package notifier

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/notifier/internal/channel"
	"github.com/kilnhq/kiln/telemetry"
)

// Secret is a configuration value that must never be printed: it formats,
// logs and encodes as "[redacted]".
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// LogValue redacts the secret in slog records.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText redacts the secret in JSON and other encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret itself, for the one place that uses it.
func (s Secret) Reveal() string { return string(s) }

// Config is the notifier's configuration, read from the environment.
type Config struct {
	connect.NATSConfig
	connect.MongoConfig
	AdminAddr string `env:"NOTIFIER_ADMIN_ADDR" envDefault:"127.0.0.1:9104"`
	// RulesFile is a YAML or JSON rules file; empty uses the example rules
	// built into the binary (rules.example.yaml).
	RulesFile   string        `env:"NOTIFIER_RULES_FILE"`
	MaxAttempts int           `env:"NOTIFIER_MAX_ATTEMPTS" envDefault:"10"`
	BackoffBase time.Duration `env:"NOTIFIER_BACKOFF_BASE" envDefault:"1s"`
	BackoffMax  time.Duration `env:"NOTIFIER_BACKOFF_MAX" envDefault:"5m"`
	AckWait     time.Duration `env:"NOTIFIER_ACK_WAIT" envDefault:"30s"`
	SendTimeout time.Duration `env:"NOTIFIER_SEND_TIMEOUT" envDefault:"10s"`
	Concurrency int           `env:"NOTIFIER_DELIVERY_CONCURRENCY" envDefault:"4"`
	// LeaseTTL is how long the active notifier's lease lasts unrenewed:
	// a standby takes over this long after the active process died (at
	// once when it stopped gracefully). The same on every notifier.
	LeaseTTL time.Duration `env:"NOTIFIER_LEASE_TTL" envDefault:"10s"`
	// StreamReplicas is the replica count of the ALERTS and ALERTS_DLQ streams.
	StreamReplicas int `env:"STREAM_REPLICAS" envDefault:"1"`

	SlackWebhookURL Secret   `env:"SLACK_WEBHOOK_URL"`
	SMTPHost        string   `env:"SMTP_HOST"`
	SMTPPort        int      `env:"SMTP_PORT" envDefault:"587"`
	SMTPUsername    string   `env:"SMTP_USERNAME"`
	SMTPPassword    Secret   `env:"SMTP_PASSWORD"`
	SMTPAuth        string   `env:"SMTP_AUTH"`
	SMTPFrom        string   `env:"SMTP_FROM"`
	SMTPTo          []string `env:"SMTP_TO" envSeparator:","`
	SMTPTLS         string   `env:"SMTP_TLS" envDefault:"starttls-required"`
	// Telemetry is the OpenTelemetry tracing (OTEL_* variables); off
	// without OTEL_EXPORTER_OTLP_ENDPOINT.
	Telemetry telemetry.Config
}

// Validate reports the first invalid setting, naming its env var.
func (c *Config) Validate() error {
	if err := errors.Join(c.NATSConfig.Validate(), c.MongoConfig.Validate()); err != nil {
		return err
	}
	switch {
	case c.MaxAttempts < 1 || c.MaxAttempts > 100:
		return fmt.Errorf("NOTIFIER_MAX_ATTEMPTS must be between 1 and 100, got %d", c.MaxAttempts)
	case c.BackoffBase < time.Millisecond:
		return fmt.Errorf("NOTIFIER_BACKOFF_BASE must be at least 1ms, got %s", c.BackoffBase)
	case c.BackoffMax < c.BackoffBase:
		return fmt.Errorf("NOTIFIER_BACKOFF_MAX (%s) must not be below NOTIFIER_BACKOFF_BASE (%s)", c.BackoffMax, c.BackoffBase)
	case c.SendTimeout < 100*time.Millisecond:
		return fmt.Errorf("NOTIFIER_SEND_TIMEOUT must be at least 100ms, got %s", c.SendTimeout)
	case c.AckWait <= c.SendTimeout:
		return fmt.Errorf("NOTIFIER_ACK_WAIT (%s) must exceed NOTIFIER_SEND_TIMEOUT (%s)", c.AckWait, c.SendTimeout)
	case c.Concurrency < 1 || c.Concurrency > 64:
		return fmt.Errorf("NOTIFIER_DELIVERY_CONCURRENCY must be between 1 and 64, got %d", c.Concurrency)
	case c.LeaseTTL < time.Second || c.LeaseTTL > 5*time.Minute:
		return fmt.Errorf("NOTIFIER_LEASE_TTL must be between 1s and 5m, got %s", c.LeaseTTL)
	case c.StreamReplicas < 1 || c.StreamReplicas > 5:
		return fmt.Errorf("STREAM_REPLICAS must be between 1 and 5, got %d", c.StreamReplicas)
	}
	if c.SMTPHost != "" {
		if err := c.email().Validate(); err != nil {
			return err
		}
	}
	return c.Telemetry.Validate()
}

// Channels are the channels this configuration enables: log always, slack
// with SLACK_WEBHOOK_URL, email with SMTP_HOST.
func (c *Config) Channels() []string {
	out := []string{channel.Log}
	if c.SlackWebhookURL != "" {
		out = append(out, channel.Slack)
	}
	if c.SMTPHost != "" {
		out = append(out, channel.Email)
	}
	return out
}

func (c *Config) email() channel.EmailConfig {
	to := make([]string, 0, len(c.SMTPTo))
	for _, addr := range c.SMTPTo {
		if addr = strings.TrimSpace(addr); addr != "" {
			to = append(to, addr)
		}
	}
	return channel.EmailConfig{
		Host: c.SMTPHost, Port: c.SMTPPort, Username: c.SMTPUsername, Password: c.SMTPPassword.Reveal(),
		Auth: c.SMTPAuth, From: c.SMTPFrom, To: to, TLS: c.SMTPTLS, Timeout: c.SendTimeout,
	}
}

// LoadConfig reads the configuration from environ and validates it.
func LoadConfig(environ map[string]string) (Config, error) {
	c, err := env.ParseAsWithOptions[Config](env.Options{Environment: environ})
	if err != nil {
		return c, fmt.Errorf("notifier config: %w", nameVars(err))
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("notifier config: %w", err)
	}
	return c, nil
}

// nameVars rewrites env's parse errors, which name struct fields, to name
// the environment variable instead.
func nameVars(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	out := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := reflect.TypeFor[Config]().FieldByName(pe.Name); ok {
				e = fmt.Errorf("%s: %w", f.Tag.Get("env"), pe.Err)
			}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}
