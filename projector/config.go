package projector

import (
	"errors"
	"fmt"
	"time"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/connect/envconfig"
	"github.com/kilnhq/kiln/telemetry"
)

// Config is the projector's configuration, read from the environment.
type Config struct {
	connect.NATSConfig
	connect.MongoConfig
	connect.RedisConfig
	AdminAddr string        `env:"PROJECTOR_ADMIN_ADDR" envDefault:"127.0.0.1:9103"`
	BatchSize int           `env:"PROJECTOR_BATCH_SIZE" envDefault:"500"`
	AckWait   time.Duration `env:"PROJECTOR_ACK_WAIT" envDefault:"30s"`
	// MaxDeliver is JetStream's delivery limit for the projection
	// consumers; -1 (the default) is none. A bounded limit can lose
	// events: a message that reaches it, even only by waiting behind a
	// slow batch, is dropped by the server and the ack floor moves past it.
	// Poison is decided by PoisonAfter, not by this limit.
	MaxDeliver  int `env:"PROJECTOR_MAX_DELIVER" envDefault:"-1"`
	PoisonAfter int `env:"PROJECTOR_POISON_AFTER" envDefault:"5"`
	// MinuteRetention is how long Redis keeps per-minute counters.
	MinuteRetention time.Duration `env:"PROJECTOR_MINUTE_RETENTION" envDefault:"24h"`
	// RecentMaxEvents bounds the recent-events cache in Redis (GET /events
	// answers from it when the whole answer lies within it).
	RecentMaxEvents int `env:"PROJECTOR_RECENT_MAX_EVENTS" envDefault:"100000"`
	// RedisWaitReplicas is how many Redis replicas must confirm the
	// counters' and the cache's writes (WAIT after each batch, on the
	// connection that wrote) before the batch is acked; 0, the default,
	// is none: a failover's lost writes are then found and restored from
	// the stream (docs/operations.md, Redis failover).
	RedisWaitReplicas int `env:"REDIS_WAIT_REPLICAS" envDefault:"0"`
	// RedisWaitTimeout bounds that wait; fewer confirmations fail the
	// batch, which is retried.
	RedisWaitTimeout time.Duration `env:"REDIS_WAIT_TIMEOUT" envDefault:"1s"`
	// CheckInterval is how often checkpoints, lag and a lost Redis are checked.
	CheckInterval time.Duration `env:"PROJECTOR_CHECK_INTERVAL" envDefault:"1s"`
	// Telemetry is the OpenTelemetry tracing (OTEL_* variables); off
	// without OTEL_EXPORTER_OTLP_ENDPOINT.
	Telemetry telemetry.Config
}

// Validate reports the first invalid setting, naming its env var.
func (c *Config) Validate() error {
	switch {
	case c.BatchSize < 1 || c.BatchSize > 10_000:
		return fmt.Errorf("PROJECTOR_BATCH_SIZE must be between 1 and 10000, got %d", c.BatchSize)
	case c.AckWait < time.Second:
		return fmt.Errorf("PROJECTOR_ACK_WAIT must be at least 1s, got %s", c.AckWait)
	case c.MaxDeliver != -1 && c.MaxDeliver < 2:
		return fmt.Errorf("PROJECTOR_MAX_DELIVER must be -1 (no limit) or at least 2, got %d", c.MaxDeliver)
	case c.PoisonAfter < 1:
		return fmt.Errorf("PROJECTOR_POISON_AFTER must be at least 1, got %d", c.PoisonAfter)
	case c.MaxDeliver != -1 && c.PoisonAfter >= c.MaxDeliver:
		return fmt.Errorf("PROJECTOR_POISON_AFTER must be below PROJECTOR_MAX_DELIVER (%d), got %d", c.MaxDeliver, c.PoisonAfter)
	case c.MinuteRetention < time.Hour:
		return fmt.Errorf("PROJECTOR_MINUTE_RETENTION must be at least 1h (the /metrics series), got %s", c.MinuteRetention)
	case c.CheckInterval < 10*time.Millisecond:
		return fmt.Errorf("PROJECTOR_CHECK_INTERVAL must be at least 10ms, got %s", c.CheckInterval)
	case c.RedisWaitReplicas < 0 || c.RedisWaitReplicas > 16:
		return fmt.Errorf("REDIS_WAIT_REPLICAS must be between 0 and 16, got %d", c.RedisWaitReplicas)
	case c.RedisWaitTimeout < 10*time.Millisecond || c.RedisWaitTimeout > time.Minute:
		return fmt.Errorf("REDIS_WAIT_TIMEOUT must be between 10ms and 1m, got %s", c.RedisWaitTimeout)
	case c.RecentMaxEvents < 1000 || c.RecentMaxEvents > 10_000_000:
		return fmt.Errorf("PROJECTOR_RECENT_MAX_EVENTS must be between 1000 and 10000000, got %d", c.RecentMaxEvents)
	}
	return errors.Join(c.NATSConfig.Validate(), c.MongoConfig.Validate(), c.RedisConfig.Validate(), c.Telemetry.Validate())
}

// LoadConfig reads the configuration from environ (variable → value),
// applies defaults and validates it.
func LoadConfig(environ map[string]string) (Config, error) {
	return envconfig.Load[Config](environ, "projector")
}
