package gateway

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/caarlos0/env/v11"
	"github.com/redis/go-redis/v9"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/httpserver/tokens"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/telemetry"
	"github.com/kilnhq/kiln/telemetry/redact"
)

// Config is the gateway's configuration, read from the environment. Every
// field is documented in docs/configuration.md under its env var.
type Config struct {
	// HTTPAddr is the public listener (read API, OpenAPI document, docs).
	HTTPAddr string `env:"GATEWAY_ADDR" envDefault:":8081"`
	// AdminAddr is the admin listener: Prometheus /metrics, /healthz, /readyz.
	AdminAddr string `env:"GATEWAY_ADMIN_ADDR" envDefault:"127.0.0.1:9102"`
	// AdminPprof serves net/http/pprof on the admin listener.
	AdminPprof bool `env:"ADMIN_PPROF" envDefault:"false"`
	// AllowedOrigins are the origins browser pages may read from (CORS).
	AllowedOrigins httpserver.Origins `env:"KILN_ALLOWED_ORIGINS" envDefault:"*"`
	// MongoURI is the MongoDB holding the event history.
	MongoURI string `env:"MONGO_URI" envDefault:"mongodb://127.0.0.1:27017"`
	// MongoDatabase is the database of the history collections.
	MongoDatabase string `env:"MONGO_DATABASE" envDefault:"kiln"`
	// RedisURL is the Redis holding the metric counters.
	RedisURL string `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	// ReadKeys are the API keys allowed to read; empty turns read auth off.
	ReadKeys []string `env:"KILN_READ_KEYS" envSeparator:","`
	// Tokens are the subscriber tokens' settings (KILN_TOKEN_SECRETS, …):
	// a token reads only the events its claims allow. Setting them turns
	// read auth on, as read keys do.
	Tokens tokens.Config
	// NATSURL is the NATS server holding the EVENTS stream, which feeds
	// GET /stream (used by Run; standalone passes its own connection).
	NATSURL string `env:"NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	// SSE configures GET /stream (live.go).
	SSE SSEConfig
	// AdminKeys guard the schema registry's writes (POST /schemas/{type},
	// PUT /schemas/{type}/settings), as they guard the webhooks admin API.
	AdminKeys []string `env:"KILN_ADMIN_KEYS" envSeparator:","`
	// Schemas is the schema registry's policy (SCHEMAS_*).
	Schemas catalog.Config
	// Stream holds STREAM_REPLICAS, which the schema registry's stream
	// (KILN_SCHEMAS) follows when the gateway creates it.
	Stream schemas.StreamOptions
	// Telemetry is the OpenTelemetry tracing (OTEL_* variables); off
	// without OTEL_EXPORTER_OTLP_ENDPOINT.
	Telemetry telemetry.Config
}

// Validate reports every invalid setting, naming its env var.
func (c *Config) Validate() error {
	var errs []error
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("GATEWAY_ADDR must not be empty"))
	}
	if c.AdminAddr == "" {
		errs = append(errs, errors.New("GATEWAY_ADMIN_ADDR must not be empty"))
	}
	if c.HTTPAddr != "" && c.HTTPAddr == c.AdminAddr {
		errs = append(errs, fmt.Errorf("GATEWAY_ADDR and GATEWAY_ADMIN_ADDR must differ, both are %q", c.HTTPAddr))
	}
	if u, err := url.Parse(c.MongoURI); err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") {
		errs = append(errs, fmt.Errorf("MONGO_URI must be a mongodb:// or mongodb+srv:// URI, got %q", redact.URL(c.MongoURI)))
	}
	// MongoDB refuses these characters in database names.
	if c.MongoDatabase == "" || len(c.MongoDatabase) > 63 || strings.ContainsAny(c.MongoDatabase, "/\\. \"$*<>:|?\x00") {
		errs = append(errs, fmt.Errorf("MONGO_DATABASE must be 1-63 characters without /\\. \"$*<>:|?, got %q", c.MongoDatabase))
	}
	if _, err := redis.ParseURL(c.RedisURL); err != nil {
		errs = append(errs, fmt.Errorf("REDIS_URL: %w", redact.Error(err, c.RedisURL)))
	}
	errs = append(errs, c.SSE.validate()...)
	if c.NATSURL == "" {
		errs = append(errs, errors.New("NATS_URL must not be empty"))
	}
	keys := 0
	for _, k := range c.ReadKeys {
		if strings.TrimSpace(k) != "" {
			keys++
		}
	}
	if len(c.ReadKeys) > 0 && keys == 0 {
		errs = append(errs, errors.New("KILN_READ_KEYS is set but holds no key; unset it to turn read auth off"))
	}
	if err := c.Tokens.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Schemas.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Telemetry.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// LoadConfig reads the configuration from environ (variable → value),
// applies defaults and validates it.
func LoadConfig(environ map[string]string) (Config, error) {
	c, err := env.ParseAsWithOptions[Config](env.Options{Environment: environ})
	if err != nil {
		return c, fmt.Errorf("gateway config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("gateway config: %w", err)
	}
	return c, nil
}
