package serve

import (
	"context"
	"errors"
	"log/slog"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/httpserver/tokens"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/realtime/grpcapi"
	"github.com/kilnhq/kiln/realtime/socketio"
	"github.com/kilnhq/kiln/standalone"
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
	// AdminPprof serves net/http/pprof on the admin listener.
	AdminPprof bool `env:"ADMIN_PPROF" envDefault:"false"`
	// AllowedOrigins are the origins browser pages may call this role
	// from (KILN_ALLOWED_ORIGINS).
	AllowedOrigins httpserver.Origins `env:"KILN_ALLOWED_ORIGINS" envDefault:"*"`
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
	return errors.Join(c.Stores.validate(), validateListeners(c.listeners(), "REALTIME"), c.GRPC.Validate(), c.SocketIO.Validate(), c.Tokens.Validate(), c.Ingest.Validate())
}

func (c *RealtimeConfig) listeners() standalone.Listeners {
	return standalone.Listeners{HTTPAddr: c.HTTPAddr, AdminAddr: c.AdminAddr, Pprof: c.AdminPprof, BodyLimit: bodyLimit,
		Origins: c.AllowedOrigins}
}

// LoadRealtimeConfig reads the realtime role's configuration from environ.
func LoadRealtimeConfig(environ map[string]string) (RealtimeConfig, error) {
	return loadConfig[RealtimeConfig](environ, "realtime")
}

// RunRealtime runs the realtime role until ctx is done. Tracing is
// ingest's (OTEL_*, read with ingest's settings).
func RunRealtime(ctx context.Context, cfg RealtimeConfig, log *slog.Logger) error {
	return runParts(ctx, "kiln-realtime", cfg.Stores, cfg.Ingest.Telemetry, cfg.listeners(), log, func(c *connected) ([]standalone.Part, error) {
		// Appends use ingest's connection (no reconnect buffer, see
		// ingest.Connect); the feed consumes on the other one.
		inc, err := ingest.Connect(cfg.NATSURL, "kiln-realtime-ingest", log)
		if err != nil {
			return nil, err
		}
		c.closes, c.drains = append(c.closes, inc.Close), append(c.drains, inc)
		ing, err := ingest.New(ctx, cfg.Ingest, ingest.Deps{NATS: inc, Metrics: c.reg, Log: log, Tracer: c.tp})
		if err != nil {
			return nil, err
		}
		rt, err := standalone.NewRealtime(
			standalone.RealtimeConfig{GRPC: cfg.GRPC, SocketIO: cfg.SocketIO, ReadKeys: cfg.ReadKeys, IngestKeys: cfg.Ingest.APIKeys,
				PublishableKeys: cfg.Ingest.PublishableKeys, Tokens: cfg.Tokens,
				Origins: cfg.AllowedOrigins},
			standalone.RealtimeDeps{Ingest: ing, Mongo: c.db, JetStream: c.js, Metrics: c.reg, Log: log, Tracer: c.tp})
		// The append path's readiness and its resolver (writes left in doubt).
		return []standalone.Part{{Name: "ingest", Ready: ing.Ready, Run: ing.Run}, rt}, err
	})
}
