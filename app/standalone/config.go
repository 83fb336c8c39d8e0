// Package standalone runs all of Kiln in one process on one machine:
// embedded NATS JetStream and FerretDB with their data under one directory,
// Redis from REDIS_URL or a redis-server child (the in-process miniredis
// only as a last resort), and every service on one HTTP port.
package standalone

import (
	"fmt"

	"github.com/kilnhq/kiln/connect/envconfig"
	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/notifier"
	"github.com/kilnhq/kiln/projector"
	"github.com/kilnhq/kiln/realtime/grpcapi"
	"github.com/kilnhq/kiln/realtime/socketio"
	"github.com/kilnhq/kiln/telemetry"
	"github.com/kilnhq/kiln/webhooks"
)

// Config is the standalone configuration, read from the environment. The
// services' own settings (INGEST_*, STREAM_*, …) apply as documented; their
// listen addresses and dependency URLs are replaced by the ones below.
type Config struct {
	Listeners
	Stores
	// OriginsConfig is the origins browser pages may call Kiln from
	// (CORS and the Socket.IO origin check); "*", as both old servers.
	httpserver.OriginsConfig
	// Services are the services to run (all by default).
	Services []string `env:"KILN_SERVICES" envDefault:"ingest,projector,notifier,gateway,webhooks" envSeparator:","`

	Ingest    ingest.Config
	Projector projector.Config
	Gateway   gateway.Config
	// Notifier runs with NOTIFIER_RULES_FILE or the built-in example rules;
	// Slack and email only with SLACK_WEBHOOK_URL and SMTP_HOST.
	Notifier notifier.Config
	// Webhooks is the outbound webhooks' admin API and dispatcher.
	Webhooks webhooks.Config
	// GRPC is the gRPC listener (orders.OrderService, kiln.v1.EventService),
	// served with the ingest service.
	GRPC grpcapi.Config
	// SocketIO is the Socket.IO server (/chat, /notifications) on PORT.
	SocketIO socketio.Config
	// Telemetry is the tracing of every role: one provider (service.name
	// "kiln" unless OTEL_SERVICE_NAME says otherwise) for the process. The
	// roles' own copies read the same variables and are validated with them.
	Telemetry telemetry.Config
}

// Validate reports the first invalid setting, naming its env var. A
// service's own settings are checked only when it runs ("": always).
func (c *Config) Validate() error {
	for _, check := range []struct {
		service string
		check   func() error
	}{
		{"", c.Listeners.validate},
		{"", c.Stores.validate},
		{"", func() error { return validateServices(c.Services) }},
		{"", c.Gateway.Validate},
		{"", c.Projector.Validate},
		{"notifier", c.Notifier.Validate},
		// A bad rules file stops start-up before anything starts, naming
		// each bad rule and field.
		{"notifier", func() error { _, err := notifier.CheckRules(c.Notifier); return err }},
		{"ingest", c.GRPC.Validate},
		{"ingest", c.SocketIO.Validate},
		{"webhooks", c.Webhooks.Validate},
		{"", c.Ingest.Validate},
	} {
		if check.service != "" && !c.runs(check.service) {
			continue
		}
		if err := check.check(); err != nil {
			return err
		}
	}
	return nil
}

// Listeners are the two listeners every service shares: the public routes
// on PORT, the admin routes (/metrics, /healthz, /readyz) on
// ADMIN_HOST:ADMIN_PORT.
type Listeners struct {
	Port      int `env:"PORT" envDefault:"8080"`
	AdminPort int `env:"ADMIN_PORT" envDefault:"9100"`
	// AdminHost is the interface the admin listener binds: loopback by
	// default, as it has no auth; 0.0.0.0 (the container image) for all.
	AdminHost string `env:"ADMIN_HOST" envDefault:"127.0.0.1"`
	// AdminConfig is ADMIN_PPROF.
	httpserver.AdminConfig
}

func (l Listeners) validate() error {
	return validatePorts(map[string]int{"PORT": l.Port, "ADMIN_PORT": l.AdminPort})
}

// Stores are where the data lives: the data folder of embedded NATS (and
// FerretDB and redis-server when they run), and the ports or URLs of the
// stores.
type Stores struct {
	DataDir  string `env:"KILN_DATA_DIR" envDefault:"./data"`
	NATSPort int    `env:"NATS_PORT" envDefault:"4222"`
	// MongoURI points at a real MongoDB; empty runs embedded FerretDB on MongoPort.
	MongoURI  string `env:"MONGO_URI"`
	MongoPort int    `env:"MONGO_PORT" envDefault:"27017"`
	// RedisURL points at a real Redis; empty starts a redis-server child
	// (else, with a warning, the in-process miniredis) on RedisPort (0: any free port).
	RedisURL  string `env:"REDIS_URL"`
	RedisPort int    `env:"REDIS_PORT" envDefault:"0"`
}

func (s Stores) validate() error {
	if err := validatePorts(map[string]int{"NATS_PORT": s.NATSPort, "MONGO_PORT": s.MongoPort}); err != nil {
		return err
	}
	if s.RedisPort < 0 || s.RedisPort > 65535 {
		return fmt.Errorf("REDIS_PORT must be 0 or a TCP port, got %d", s.RedisPort)
	}
	if s.DataDir == "" {
		return fmt.Errorf("KILN_DATA_DIR must not be empty")
	}
	return nil
}

// validatePorts reports the first of ports (by name) that is not a TCP port.
func validatePorts(ports map[string]int) error {
	for name, p := range ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("%s must be a TCP port (1-65535), got %d", name, p)
		}
	}
	return nil
}

// LoadConfig reads the configuration from environ (variable → value),
// applies defaults and validates it.
func LoadConfig(environ map[string]string) (Config, error) {
	return envconfig.Load[Config](environ, "standalone")
}
