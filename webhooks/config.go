package webhooks

import (
	"fmt"
	"time"

	"github.com/kilnhq/kiln/webhooks/delivery"
)

// Config is the outbound webhooks' configuration (admin API and
// dispatcher), read from the environment; every field is in
// docs/configuration.md.
type Config struct {
	// AdminKeys guard the admin API; empty leaves it open, which only a
	// deployment without any other key may (see OtherKeys).
	AdminKeys []string `env:"KILN_ADMIN_KEYS" envSeparator:","`
	// OtherKeys are the other keys set: with any, AdminKeys is required.
	OtherKeys OtherKeys
	// HTTPAddr is the public listener of `kiln serve webhooks`: this admin
	// API (kiln run serves it on PORT).
	HTTPAddr string `env:"WEBHOOKS_ADDR" envDefault:":8082"`
	// AdminAddr is the role's admin listener: /metrics, /healthz, /readyz.
	AdminAddr string `env:"WEBHOOKS_ADMIN_ADDR" envDefault:"127.0.0.1:9105"`
	// AttemptTimeout bounds one delivery request.
	AttemptTimeout time.Duration `env:"WEBHOOKS_ATTEMPT_TIMEOUT" envDefault:"15s"`
	// Schedule is the delay after each failed attempt (Svix's by default).
	Schedule []time.Duration `env:"WEBHOOKS_RETRY_SCHEDULE" envDefault:"5s,5m,30m,2h,5h,10h,10h" envSeparator:","`
	// MaxRetryAfter caps the wait a 429/503 Retry-After asks for.
	MaxRetryAfter time.Duration `env:"WEBHOOKS_MAX_RETRY_AFTER" envDefault:"1h"`
	// DisableAfter disables an endpoint failing continuously this long.
	DisableAfter time.Duration `env:"WEBHOOKS_DISABLE_AFTER" envDefault:"120h"`
	// LogRetention is how long the delivery log keeps a finished delivery
	// (succeeded or dead) after its last change.
	LogRetention time.Duration `env:"WEBHOOKS_LOG_RETENTION" envDefault:"720h"`
	// RotationOverlap is how long a rotated-out secret keeps signing.
	RotationOverlap time.Duration `env:"WEBHOOKS_ROTATION_OVERLAP" envDefault:"24h"`
	// Concurrency is deliveries in flight in all; PerEndpoint to one endpoint.
	Concurrency int `env:"WEBHOOKS_CONCURRENCY" envDefault:"64"`
	PerEndpoint int `env:"WEBHOOKS_ENDPOINT_CONCURRENCY" envDefault:"8"`
	// AllowNetworks are CIDRs the SSRF guard lets through (e.g.
	// 127.0.0.0/8 for a local demo receiver).
	AllowNetworks []string `env:"WEBHOOKS_ALLOW_NETWORKS" envSeparator:","`
	// EndpointRefresh is how often the dispatcher reloads the endpoints
	// changed by another process.
	EndpointRefresh time.Duration `env:"WEBHOOKS_ENDPOINT_REFRESH" envDefault:"2s"`
	// StreamReplicas is the WEBHOOKS stream's replica count.
	StreamReplicas int `env:"STREAM_REPLICAS" envDefault:"1"`
}

// Validate reports the first invalid setting, naming its env var.
func (c *Config) Validate() error {
	switch {
	case c.AttemptTimeout < 10*time.Millisecond:
		return fmt.Errorf("WEBHOOKS_ATTEMPT_TIMEOUT must be at least 10ms, got %s", c.AttemptTimeout)
	case len(c.Schedule) == 0 || len(c.Schedule) > 50:
		return fmt.Errorf("WEBHOOKS_RETRY_SCHEDULE must list 1 to 50 delays, got %d", len(c.Schedule))
	case c.MaxRetryAfter < time.Second:
		return fmt.Errorf("WEBHOOKS_MAX_RETRY_AFTER must be at least 1s, got %s", c.MaxRetryAfter)
	case c.DisableAfter < time.Second:
		return fmt.Errorf("WEBHOOKS_DISABLE_AFTER must be at least 1s, got %s", c.DisableAfter)
	case c.LogRetention < time.Second:
		return fmt.Errorf("WEBHOOKS_LOG_RETENTION must be at least 1s, got %s", c.LogRetention)
	case c.RotationOverlap < 0:
		return fmt.Errorf("WEBHOOKS_ROTATION_OVERLAP must not be negative, got %s", c.RotationOverlap)
	case c.Concurrency < 1 || c.Concurrency > 10_000:
		return fmt.Errorf("WEBHOOKS_CONCURRENCY must be between 1 and 10000, got %d", c.Concurrency)
	case c.PerEndpoint < 1:
		return fmt.Errorf("WEBHOOKS_ENDPOINT_CONCURRENCY must be at least 1, got %d", c.PerEndpoint)
	case c.EndpointRefresh < 10*time.Millisecond:
		return fmt.Errorf("WEBHOOKS_ENDPOINT_REFRESH must be at least 10ms, got %s", c.EndpointRefresh)
	case c.StreamReplicas < 1:
		return fmt.Errorf("STREAM_REPLICAS must be at least 1, got %d", c.StreamReplicas)
	}
	for i, d := range c.Schedule {
		if d <= 0 {
			return fmt.Errorf("WEBHOOKS_RETRY_SCHEDULE: delay %d must be positive, got %s", i+1, d)
		}
	}
	if _, err := delivery.ParsePrefixes(c.AllowNetworks); err != nil {
		return fmt.Errorf("WEBHOOKS_ALLOW_NETWORKS: %w", err)
	}
	return c.checkAdminKeys()
}

// defaultLogRetention is WEBHOOKS_LOG_RETENTION's default, for a Config
// built in code without it.
const defaultLogRetention = 30 * 24 * time.Hour

// ackMargin is added to the attempt timeout for a job's ack wait: time to
// record the attempt after the request.
const ackMargin = 30 * time.Second
