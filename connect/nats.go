package connect

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kilnhq/kiln/telemetry/redact"
)

// NATSUse is what a NATS connection is for; it decides how the connection
// behaves while the server is unreachable.
type NATSUse int

const (
	// Consume is a serving process's connection for consumers, KV and
	// reads: it retries the first connect and reconnects forever,
	// buffering what is published meanwhile.
	Consume NATSUse = iota
	// Append is the connection events are appended on: it reconnects
	// forever but buffers nothing while disconnected, so nothing
	// published while a client is being told 503 can land later.
	Append
	// Command is a CLI command's connection: one attempt, failing fast.
	Command
)

// NATS connects to the NATS server(s) at url (comma-separated) as name.
func NATS(url, name string, use NATSUse, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name(name)}
	switch use {
	case Consume:
		opts = append(opts, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	case Append:
		opts = append(opts,
			nats.MaxReconnects(-1),
			nats.ReconnectWait(250*time.Millisecond),
			nats.ReconnectBufSize(-1),
			nats.RetryOnFailedConnect(true),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil {
					log.Warn("nats disconnected", "connection", name, "err", err)
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				log.Info("nats reconnected", "connection", name, "url", redact.URL(nc.ConnectedUrl()))
			}),
		)
	case Command:
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", redact.URL(url), redact.Error(err, url))
	}
	return nc, nil
}
