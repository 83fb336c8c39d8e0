package gateway

import (
	"errors"
	"strings"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/connect/envconfig"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/httpserver/tokens"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/telemetry"
)

// Config is the gateway's configuration, read from the environment. Every
// field is documented in docs/configuration.md under its env var.
type Config struct {
	// HTTPAddr is the public listener (read API, OpenAPI document, docs).
	HTTPAddr string `env:"GATEWAY_ADDR" envDefault:":8081"`
	// AdminAddr is the admin listener: Prometheus /metrics, /healthz, /readyz.
	AdminAddr string `env:"GATEWAY_ADMIN_ADDR" envDefault:"127.0.0.1:9102"`
	// OriginsConfig is the origins browser pages may read from
	// (KILN_ALLOWED_ORIGINS).
	httpserver.OriginsConfig
	// The MongoDB holding the history, the Redis holding the counters and
	// the recent cache, and the NATS servers holding the EVENTS stream,
	// which feeds GET /stream.
	connect.MongoConfig
	connect.RedisConfig
	connect.NATSConfig
	// ReadKeys are the API keys allowed to read; empty turns read auth off.
	ReadKeys []string `env:"KILN_READ_KEYS" envSeparator:","`
	// Tokens are the subscriber tokens' settings (KILN_TOKEN_SECRETS, …):
	// a token reads only the events its claims allow. Setting them turns
	// read auth on, as read keys do.
	Tokens tokens.Config
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
	errs := []error{httpserver.ValidateAddrs("GATEWAY", c.HTTPAddr, c.AdminAddr)}
	errs = append(errs, c.MongoConfig.Validate(), c.RedisConfig.Validate(), c.NATSConfig.Validate())
	errs = append(errs, c.SSE.validate()...)
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
	return envconfig.Load[Config](environ, "gateway")
}
