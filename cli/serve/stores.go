package serve

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/standalone"
	"github.com/kilnhq/kiln/telemetry"
	"github.com/kilnhq/kiln/telemetry/redact"
)

// Stores are the NATS and MongoDB settings of the webhooks and realtime
// roles.
type Stores struct {
	NATSURL       string `env:"NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	MongoURI      string `env:"MONGO_URI" envDefault:"mongodb://127.0.0.1:27017"`
	MongoDatabase string `env:"MONGO_DATABASE" envDefault:"kiln"`
}

func (s Stores) validate() error {
	switch {
	case s.NATSURL == "":
		return fmt.Errorf("NATS_URL must not be empty")
	case s.MongoURI == "":
		return fmt.Errorf("MONGO_URI must not be empty")
	case s.MongoDatabase == "":
		return fmt.Errorf("MONGO_DATABASE must not be empty")
	}
	return nil
}

// connected are a role's open connections, closed in reverse order.
type connected struct {
	js     jetstream.JetStream
	db     *mongo.Database
	closes []func()
	// drains are drained after serving, so outstanding acks are sent.
	drains []*nats.Conn
	// reg and tp are the role's metrics registry and tracer provider.
	reg *prometheus.Registry
	tp  trace.TracerProvider
}

func (c *connected) close() {
	for i := len(c.closes) - 1; i >= 0; i-- {
		c.closes[i]()
	}
}

// connect opens the consumer NATS connection (reconnecting forever) and
// the MongoDB client; an unreachable store shows on /readyz, it does not
// stop the start.
func (s Stores) connect(name string, log *slog.Logger) (*connected, error) {
	c := &connected{}
	nc, err := nats.Connect(s.NATSURL, nats.Name(name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return c, fmt.Errorf("connect to nats: %w", redact.Error(err, s.NATSURL))
	}
	c.closes, c.drains = append(c.closes, nc.Close), append(c.drains, nc)
	if c.js, err = jetstream.New(nc); err != nil {
		return c, fmt.Errorf("jetstream: %w", err)
	}
	mc, err := mongo.Connect(options.Client().ApplyURI(s.MongoURI).SetAppName(name))
	if err != nil {
		return c, fmt.Errorf("connect to mongo: %w", redact.Error(err, s.MongoURI))
	}
	c.closes = append(c.closes, func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := mc.Disconnect(dctx); err != nil {
			log.Warn("disconnect from mongo", "err", err)
		}
	})
	c.db = mc.Database(s.MongoDatabase)
	return c, nil
}

// runParts runs a role made of parts: it connects to s, starts tracing
// (tracing.Named(name)), builds the parts and serves them on l until ctx is
// done, then drains the NATS connections.
func runParts(ctx context.Context, name string, s Stores, tracing telemetry.Config, l standalone.Listeners,
	log *slog.Logger, build func(c *connected) ([]standalone.Part, error)) error {
	c, err := s.connect(name, log)
	defer c.close()
	if err != nil {
		return err
	}
	tp, stopTracing, err := telemetry.Start(ctx, tracing.Named(name), log)
	if err != nil {
		return err
	}
	defer stopTracing.Flush(log)
	c.reg, c.tp = httpserver.NewRegistry(), tp
	parts, err := build(c)
	if err != nil {
		return err
	}
	err = standalone.ServeParts(ctx, l, parts, c.reg, log)
	for _, nc := range c.drains {
		if derr := nc.Drain(); derr != nil && err == nil {
			err = fmt.Errorf("drain nats: %w", derr)
		}
	}
	return err
}
