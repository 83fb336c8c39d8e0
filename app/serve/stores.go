package serve

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/app/roles"
	"github.com/kilnhq/kiln/app/runner"
	"github.com/kilnhq/kiln/connect"
)

// Stores are the NATS and MongoDB settings of the webhooks and realtime
// roles.
type Stores struct {
	connect.NATSConfig
	connect.MongoConfig
}

func (s Stores) validate() error {
	return errors.Join(s.NATSConfig.Validate(), s.MongoConfig.Validate())
}

// stores says which stores a role connects to; "" is one it does not
// need.
type stores struct {
	// name names the role's connections (the process name).
	name string
	// appendNATS is the NATS URL events are appended through (ingest's
	// path); consumeNATS the one its consumers and KV reads use.
	appendNATS, consumeNATS string
	mongoURI, mongoDatabase string
	redisURL                string
}

// open opens s's connections through rd.Conns (which drains and closes
// them when the process ends) and returns them as the roles' deps. An
// unreachable store shows on /readyz; it does not stop the start.
func (s stores) open(rd runner.Deps) (roles.Deps, error) {
	d := roles.Deps{Metrics: rd.Metrics, Tracer: rd.Tracer, Log: rd.Log, Named: true} // kiln serve names the service
	var err error
	if s.appendNATS != "" {
		if d.Append, err = rd.Conns.NATS(s.appendNATS, s.name+"-append", connect.Append); err != nil {
			return d, err
		}
	}
	if s.consumeNATS != "" {
		nc, err := rd.Conns.NATS(s.consumeNATS, s.name, connect.Consume)
		if err != nil {
			return d, err
		}
		if d.JetStream, err = jetstream.New(nc); err != nil {
			return d, fmt.Errorf("jetstream: %w", err)
		}
	}
	if s.mongoURI != "" {
		mc, err := rd.Conns.Mongo(s.mongoURI, s.name, 0)
		if err != nil {
			return d, err
		}
		d.Mongo = mc.Database(s.mongoDatabase)
	}
	if s.redisURL != "" {
		if d.Redis, err = rd.Conns.Redis(s.redisURL); err != nil {
			return d, err
		}
	}
	return d, nil
}
