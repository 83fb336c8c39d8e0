package serve

import (
	"errors"

	"github.com/kilnhq/kiln/app/runner"
	"github.com/kilnhq/kiln/connect/envconfig"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/httpserver/tokens"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/realtime/grpcapi"
	"github.com/kilnhq/kiln/realtime/socketio"
)

// RealtimeConfig is the realtime role's configuration: the gRPC listener
// and Socket.IO on its own HTTP port. Orders and chat messages are
// appended through ingest's path, so ingest's settings (INGEST_*,
// STREAM_*, KILN_INGEST_KEYS) apply to them as to POST /events.
type RealtimeConfig struct {
	Stores
	// HTTPAddr is the public listener: Socket.IO under /socket.io/.
	HTTPAddr string `env:"REALTIME_ADDR" envDefault:":8083"`
	// AdminAddr is the admin listener: /metrics, /healthz, /readyz.
	AdminAddr string `env:"REALTIME_ADMIN_ADDR" envDefault:"127.0.0.1:9106"`
	httpserver.OriginsConfig
	// ReadKeys are the keys subscribers (Subscribe, GetOrders, Socket.IO)
	// may present; empty: reading is open, as on the read API.
	ReadKeys []string `env:"KILN_READ_KEYS" envSeparator:","`
	// Tokens are the subscriber tokens' settings (KILN_TOKEN_SECRETS, …):
	// a token subscribes to the events its claims allow.
	Tokens   tokens.Config
	GRPC     grpcapi.Config
	SocketIO socketio.Config
	Ingest   ingest.Config
}

// Validate reports the invalid settings, naming their env vars.
func (c *RealtimeConfig) Validate() error {
	return errors.Join(c.Stores.validate(), httpserver.ValidateAddrs("REALTIME", c.HTTPAddr, c.AdminAddr), c.GRPC.Validate(), c.SocketIO.Validate(), c.Tokens.Validate(), c.Ingest.Validate())
}

func (c *RealtimeConfig) listeners() runner.Listeners {
	return runner.Listeners{HTTPAddr: c.HTTPAddr, AdminAddr: c.AdminAddr, BodyLimit: bodyLimit, Origins: c.AllowedOrigins}
}

// LoadRealtimeConfig reads the realtime role's configuration from environ.
func LoadRealtimeConfig(environ map[string]string) (RealtimeConfig, error) {
	return envconfig.Load[RealtimeConfig](environ, "realtime")
}
