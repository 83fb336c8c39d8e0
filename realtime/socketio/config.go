package socketio

import (
	"errors"
	"fmt"
	"time"
)

// Config configures the Socket.IO server. Every field is documented in
// the configuration table under its env var.
type Config struct {
	// Token is the old server's shared token (compat); clients may also
	// present a read key. With neither configured the namespaces are open.
	Token string `env:"WS_TOKEN"`
	// Buffer is how many feed events the server may have pending before
	// it is cut from the feed (and rejoins, logging the loss).
	Buffer int `env:"SOCKETIO_BUFFER" envDefault:"8192"`
	// WriteTimeout disconnects a WebSocket client that accepts no data for
	// this long, so a stuck client's queued packets cannot grow forever.
	WriteTimeout time.Duration `env:"SOCKETIO_WRITE_TIMEOUT" envDefault:"10s"`
	// ClientBuffer is how many frames a WebSocket client may have queued;
	// past it the client is cut (close 1013 "slow consumer") and reconnects.
	ClientBuffer int `env:"SOCKETIO_CLIENT_BUFFER" envDefault:"4096"`
	// ClientBufferBytes is how many bytes of frames a WebSocket client may
	// have queued; past it the client is cut as past ClientBuffer.
	ClientBufferBytes int `env:"SOCKETIO_CLIENT_BUFFER_BYTES" envDefault:"8388608"`
	// FlushInterval is how long the fan-out gathers feed events before it
	// hands them to every client at once (each client's writer then sends
	// them in one write): the price of a broadcast is paid per batch, not
	// per event. 0 sends each event as it comes.
	FlushInterval time.Duration `env:"SOCKETIO_FLUSH_INTERVAL" envDefault:"20ms"`
	// MaxConnections bounds the Engine.IO clients connected at once; one
	// more handshake is answered 503.
	MaxConnections int `env:"SOCKETIO_MAX_CONNECTIONS" envDefault:"10000"`
	// MaxPacketBytes bounds one packet as received (the Engine.IO
	// maxHttpBufferSize): a longer WebSocket message closes the connection
	// with 1009 "message too big", a longer polling POST is answered 413.
	MaxPacketBytes int `env:"SOCKETIO_MAX_PACKET_BYTES" envDefault:"65536"`
	// MaxMessageBytes bounds a /chat message's author and text, or an
	// order:update's orderId and status, as decoded (UTF-8 bytes); a longer
	// one is refused with an error naming this setting.
	MaxMessageBytes int `env:"SOCKETIO_MAX_MESSAGE_BYTES" envDefault:"16384"`
	// ChatQueueBytes bounds the /chat messages waiting to be stored, in
	// bytes (at most chatQueue messages too); past it a message is refused
	// with "server busy".
	ChatQueueBytes int `env:"SOCKETIO_CHAT_QUEUE_BYTES" envDefault:"8388608"`
	// ChatBatchBytes bounds the body of one append of queued /chat
	// messages (a batch always holds at least one message).
	ChatBatchBytes int `env:"SOCKETIO_CHAT_BATCH_BYTES" envDefault:"1048576"`
	// OrderUpdateRate is how many order:update rebroadcasts one socket may
	// send per second (bursts of as many); past it one is refused.
	OrderUpdateRate float64 `env:"SOCKETIO_ORDER_UPDATE_RATE" envDefault:"10"`
	// HandshakeRate is how many new Engine.IO sessions the server opens per
	// second (bursts of as many); one more handshake is answered 429 with
	// Retry-After, naming this setting. A storm of reconnects (clients cut
	// for flooding, or every client after a restart) then costs the server
	// a cheap refusal each instead of a session each, and the rest of it
	// (health checks, other streams) keeps answering.
	HandshakeRate float64 `env:"SOCKETIO_HANDSHAKE_RATE" envDefault:"500"`
}

// Defaults returns the configuration with every default applied.
func Defaults() Config {
	return Config{Buffer: 8192, WriteTimeout: 10 * time.Second, ClientBuffer: 4096, ClientBufferBytes: 8 << 20,
		FlushInterval: 20 * time.Millisecond, MaxConnections: 10000, MaxPacketBytes: 64 << 10,
		MaxMessageBytes: 16 << 10, ChatQueueBytes: 8 << 20, ChatBatchBytes: 1 << 20, OrderUpdateRate: 10,
		HandshakeRate: 500}
}

// setDefaults fills what a zero Config leaves unset.
func (c *Config) setDefaults() {
	d := Defaults()
	for _, f := range []struct {
		v   *int
		def int
	}{
		{&c.Buffer, d.Buffer}, {&c.ClientBuffer, d.ClientBuffer}, {&c.ClientBufferBytes, d.ClientBufferBytes},
		{&c.MaxConnections, d.MaxConnections}, {&c.MaxPacketBytes, d.MaxPacketBytes},
		{&c.MaxMessageBytes, d.MaxMessageBytes}, {&c.ChatQueueBytes, d.ChatQueueBytes}, {&c.ChatBatchBytes, d.ChatBatchBytes},
	} {
		if *f.v < 1 {
			*f.v = f.def
		}
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.FlushInterval < 0 {
		c.FlushInterval = 0
	}
	if c.OrderUpdateRate <= 0 {
		c.OrderUpdateRate = d.OrderUpdateRate
	}
	if c.HandshakeRate <= 0 {
		c.HandshakeRate = d.HandshakeRate
	}
}

// Validate reports every invalid setting, naming its env var.
func (c *Config) Validate() error {
	var errs []error
	for _, r := range []struct {
		name     string
		v        int
		min, max int
	}{
		{"SOCKETIO_BUFFER", c.Buffer, 1, 1 << 20},
		{"SOCKETIO_CLIENT_BUFFER", c.ClientBuffer, 1, 1 << 20},
		{"SOCKETIO_CLIENT_BUFFER_BYTES", c.ClientBufferBytes, 64 << 10, 1 << 30},
		{"SOCKETIO_MAX_CONNECTIONS", c.MaxConnections, 1, 1 << 20},
		{"SOCKETIO_MAX_PACKET_BYTES", c.MaxPacketBytes, 1024, 64 << 20},
		{"SOCKETIO_MAX_MESSAGE_BYTES", c.MaxMessageBytes, 16, 64 << 20},
		{"SOCKETIO_CHAT_QUEUE_BYTES", c.ChatQueueBytes, 64 << 10, 1 << 30},
		{"SOCKETIO_CHAT_BATCH_BYTES", c.ChatBatchBytes, 1024, 64 << 20},
	} {
		if r.v < r.min || r.v > r.max {
			errs = append(errs, fmt.Errorf("%s must be between %d and %d, got %d", r.name, r.min, r.max, r.v))
		}
	}
	if c.MaxMessageBytes > c.MaxPacketBytes {
		errs = append(errs, fmt.Errorf("SOCKETIO_MAX_MESSAGE_BYTES (%d) must not exceed SOCKETIO_MAX_PACKET_BYTES (%d)",
			c.MaxMessageBytes, c.MaxPacketBytes))
	}
	if c.WriteTimeout < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("SOCKETIO_WRITE_TIMEOUT must be at least 10ms, got %s", c.WriteTimeout))
	}
	if c.FlushInterval < 0 || c.FlushInterval > 10*time.Second {
		errs = append(errs, fmt.Errorf("SOCKETIO_FLUSH_INTERVAL must be between 0s and 10s, got %s", c.FlushInterval))
	}
	if !(c.OrderUpdateRate > 0 && c.OrderUpdateRate <= 10000) { // also refuses NaN
		errs = append(errs, fmt.Errorf("SOCKETIO_ORDER_UPDATE_RATE must be above 0 and at most 10000, got %g", c.OrderUpdateRate))
	}
	if !(c.HandshakeRate > 0 && c.HandshakeRate <= 1e6) { // also refuses NaN
		errs = append(errs, fmt.Errorf("SOCKETIO_HANDSHAKE_RATE must be above 0 and at most 1000000, got %g", c.HandshakeRate))
	}
	return errors.Join(errs...)
}
