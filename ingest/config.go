package ingest

import (
	"fmt"
	"time"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/connect/envconfig"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/schemas/rejections"
	"github.com/kilnhq/kiln/telemetry"
	"github.com/kilnhq/kiln/webhooks/inbound"
)

// Config is ingest's configuration, read from the environment. Every field
// is documented in docs/configuration.md under its env var.
type Config struct {
	connect.NATSConfig
	HTTPAddr       string        `env:"INGEST_ADDR" envDefault:":8080"`
	AdminAddr      string        `env:"INGEST_ADMIN_ADDR" envDefault:"127.0.0.1:9101"`
	MaxBodyBytes   int           `env:"INGEST_MAX_BODY_BYTES" envDefault:"1048576"`
	MaxBatch       int           `env:"INGEST_MAX_BATCH" envDefault:"1000"`
	PublishTimeout time.Duration `env:"INGEST_PUBLISH_TIMEOUT" envDefault:"1500ms"`
	// RateLimit is requests per second per client (a configured ingest key,
	// else the client address); 0 is off.
	RateLimit      int           `env:"INGEST_RATE_LIMIT" envDefault:"0"`
	IdempotencyTTL time.Duration `env:"INGEST_IDEMPOTENCY_TTL" envDefault:"168h"`
	// MaxFutureSkew is how far ahead of the server clock an event's
	// timestamp may be; later ones get 400. Retention (counters, alert
	// windows) is bounded for anything accepted.
	MaxFutureSkew time.Duration `env:"INGEST_MAX_FUTURE_SKEW" envDefault:"24h"`
	APIKeys       []string      `env:"KILN_INGEST_KEYS" envSeparator:","`
	// PublishableKeys are the keys a browser may hold: each writes only
	// its event types, from its origins (httpserver.ParsePublishable).
	PublishableKeys string `env:"KILN_PUBLISHABLE_KEYS"`
	Stream          schemas.StreamOptions
	// Schemas is the schema policy: the default enforcement
	// (SCHEMAS_ENFORCEMENT) and what to do with types that have no schema
	// (SCHEMAS_UNKNOWN_TYPES).
	Schemas catalog.Config
	// Rejections are the REJECTIONS stream's limits.
	Rejections rejections.Options
	// Webhooks configures POST /webhooks/:provider.
	Webhooks inbound.Config
	// OriginsConfig is the origins browser pages may send events from
	// (KILN_ALLOWED_ORIGINS: CORS on POST /events).
	httpserver.OriginsConfig
	// Telemetry is the OpenTelemetry tracing (OTEL_* variables); off
	// without OTEL_EXPORTER_OTLP_ENDPOINT.
	Telemetry telemetry.Config
}

// Validate reports the first invalid setting, naming its env var.
func (c *Config) Validate() error {
	switch {
	case c.MaxBodyBytes < 1024:
		return fmt.Errorf("INGEST_MAX_BODY_BYTES must be at least 1024, got %d", c.MaxBodyBytes)
	case c.MaxBatch < 1 || c.MaxBatch > 100_000:
		return fmt.Errorf("INGEST_MAX_BATCH must be between 1 and 100000, got %d", c.MaxBatch)
	case c.PublishTimeout < 10*time.Millisecond:
		return fmt.Errorf("INGEST_PUBLISH_TIMEOUT must be at least 10ms, got %s", c.PublishTimeout)
	case c.RateLimit < 0:
		return fmt.Errorf("INGEST_RATE_LIMIT must not be negative, got %d", c.RateLimit)
	case c.MaxFutureSkew < time.Second:
		return fmt.Errorf("INGEST_MAX_FUTURE_SKEW must be at least 1s, got %s", c.MaxFutureSkew)
	case c.IdempotencyTTL < c.Stream.DuplicateWindow:
		return fmt.Errorf("INGEST_IDEMPOTENCY_TTL (%s) must not be shorter than STREAM_DUPLICATE_WINDOW (%s)",
			c.IdempotencyTTL, c.Stream.DuplicateWindow)
	}
	if _, err := httpserver.ParsePublishable(c.PublishableKeys); err != nil {
		return err
	}
	if err := c.Schemas.Validate(); err != nil {
		return err
	}
	if err := c.Rejections.Validate(); err != nil {
		return err
	}
	if err := c.Webhooks.Validate(); err != nil {
		return err
	}
	if err := c.NATSConfig.Validate(); err != nil {
		return err
	}
	if err := c.Telemetry.Validate(); err != nil {
		return err
	}
	return c.Stream.Validate()
}

// LoadConfig reads the configuration from environ (variable → value),
// applies defaults and validates it.
func LoadConfig(environ map[string]string) (Config, error) {
	return envconfig.Load[Config](environ, "ingest")
}
