package grpcapi

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is the gRPC server's configuration. Every field is documented in
// docs/configuration.md under its env var.
type Config struct {
	// Addr is the gRPC listener (HTTP/2, its own port: Fiber cannot carry it).
	Addr string `env:"GRPC_ADDR" envDefault:":9090"`
	// MaxMessageBytes bounds one received or sent message.
	MaxMessageBytes int `env:"GRPC_MAX_MESSAGE_BYTES" envDefault:"4194304"`
	// UnaryTimeout is the deadline of a unary call whose client set none
	// (or a longer one).
	UnaryTimeout time.Duration `env:"GRPC_UNARY_TIMEOUT" envDefault:"30s"`
	// SubscribeBuffer is how many events one Subscribe or ChatOrders stream
	// may have pending; a client that keeps it full for SlowTimeout is cut.
	SubscribeBuffer int           `env:"GRPC_STREAM_BUFFER" envDefault:"1024"`
	SlowTimeout     time.Duration `env:"GRPC_SLOW_TIMEOUT" envDefault:"10s"`
	// MaxCatchUps bounds the Subscribe streams replaying stored events
	// (resuming behind the live stream) at once; the others wait their turn.
	MaxCatchUps int `env:"GRPC_MAX_CATCHUPS" envDefault:"16"`
	// DefaultCurrency is the currency of orders created over
	// orders.OrderService, whose message has none while the order.created
	// schema requires one (ISO 4217 code).
	DefaultCurrency string `env:"ORDERS_DEFAULT_CURRENCY" envDefault:"USD"`
	// CatchUpWait is how long GetOrders waits for the orders projection to
	// reach the events stored when the call came (so an order just created
	// is listed); past it the call answers from the model as it is.
	CatchUpWait time.Duration `env:"ORDERS_CATCH_UP_WAIT" envDefault:"2s"`
	// MaxConcurrentStreams bounds the streams (calls) open at once on one
	// connection; grpc-go's rapid-reset protection works only with a bound.
	MaxConcurrentStreams uint32 `env:"GRPC_MAX_CONCURRENT_STREAMS" envDefault:"1000"`
	// MaxConnections bounds the connections open at once; the listener
	// accepts no more until one closes.
	MaxConnections int `env:"GRPC_MAX_CONNECTIONS" envDefault:"4096"`
	// MaxSubscribes bounds the Subscribe streams open at once in the
	// process; one more is answered RESOURCE_EXHAUSTED. Each idle one holds
	// about 130 KB with the default GRPC_STREAM_BUFFER (TestSubscribeHeapCost).
	MaxSubscribes int `env:"GRPC_MAX_SUBSCRIBES" envDefault:"5000"`
	// MaxConnectionIdle closes a connection that had no call for this long.
	MaxConnectionIdle time.Duration `env:"GRPC_MAX_CONNECTION_IDLE" envDefault:"15m"`
	// KeepaliveMinTime is the shortest interval between client pings the
	// server tolerates; a client pinging more often is disconnected.
	KeepaliveMinTime time.Duration `env:"GRPC_KEEPALIVE_MIN_TIME" envDefault:"10s"`
}

// Validate reports every invalid setting, naming its env var.
func (c *Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("GRPC_ADDR must not be empty"))
	}
	if c.MaxMessageBytes < 1024 || c.MaxMessageBytes > 64<<20 {
		errs = append(errs, fmt.Errorf("GRPC_MAX_MESSAGE_BYTES must be between 1024 and %d, got %d", 64<<20, c.MaxMessageBytes))
	}
	if c.UnaryTimeout < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("GRPC_UNARY_TIMEOUT must be at least 10ms, got %s", c.UnaryTimeout))
	}
	if c.SubscribeBuffer < 1 || c.SubscribeBuffer > 1<<16 {
		errs = append(errs, fmt.Errorf("GRPC_STREAM_BUFFER must be between 1 and %d, got %d", 1<<16, c.SubscribeBuffer))
	}
	if c.SlowTimeout < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("GRPC_SLOW_TIMEOUT must be at least 10ms, got %s", c.SlowTimeout))
	}
	if c.MaxCatchUps < 1 || c.MaxCatchUps > 1024 {
		errs = append(errs, fmt.Errorf("GRPC_MAX_CATCHUPS must be between 1 and 1024, got %d", c.MaxCatchUps))
	}
	if c.MaxConcurrentStreams < 1 || c.MaxConcurrentStreams > 1<<16 {
		errs = append(errs, fmt.Errorf("GRPC_MAX_CONCURRENT_STREAMS must be between 1 and %d, got %d", 1<<16, c.MaxConcurrentStreams))
	}
	if c.MaxConnections < 1 || c.MaxConnections > 1<<20 {
		errs = append(errs, fmt.Errorf("GRPC_MAX_CONNECTIONS must be between 1 and %d, got %d", 1<<20, c.MaxConnections))
	}
	if c.MaxSubscribes < 1 || c.MaxSubscribes > 1<<20 {
		errs = append(errs, fmt.Errorf("GRPC_MAX_SUBSCRIBES must be between 1 and %d, got %d", 1<<20, c.MaxSubscribes))
	}
	if c.MaxConnectionIdle < time.Second {
		errs = append(errs, fmt.Errorf("GRPC_MAX_CONNECTION_IDLE must be at least 1s, got %s", c.MaxConnectionIdle))
	}
	if c.KeepaliveMinTime < time.Second {
		errs = append(errs, fmt.Errorf("GRPC_KEEPALIVE_MIN_TIME must be at least 1s, got %s", c.KeepaliveMinTime))
	}
	if c.CatchUpWait < 0 {
		errs = append(errs, fmt.Errorf("ORDERS_CATCH_UP_WAIT must not be negative, got %s", c.CatchUpWait))
	}
	if len(c.DefaultCurrency) != 3 || strings.ToUpper(c.DefaultCurrency) != c.DefaultCurrency {
		errs = append(errs, fmt.Errorf("ORDERS_DEFAULT_CURRENCY must be a 3-letter upper-case ISO 4217 code, got %q", c.DefaultCurrency))
	}
	return errors.Join(errs...)
}

// Defaults returns the configuration with every default applied.
func Defaults() Config {
	return Config{Addr: ":9090", MaxMessageBytes: 4 << 20, UnaryTimeout: 30 * time.Second,
		SubscribeBuffer: 1024, SlowTimeout: 10 * time.Second, DefaultCurrency: "USD",
		CatchUpWait: 2 * time.Second, MaxCatchUps: 16, MaxConcurrentStreams: 1000, MaxConnections: 4096,
		MaxSubscribes: 5000, MaxConnectionIdle: 15 * time.Minute, KeepaliveMinTime: 10 * time.Second}
}
