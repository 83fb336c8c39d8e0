package connect

import (
	"fmt"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/telemetry/redact"
)

// Mongo returns a MongoDB client for uri named name (its appName in the
// server's logs); maxPool > 0 bounds its connection pool. The driver
// connects lazily: an unreachable server shows on the first command.
func Mongo(uri, name string, maxPool uint64) (*mongo.Client, error) {
	opts := options.Client().ApplyURI(uri).SetAppName(name)
	if maxPool > 0 {
		opts.SetMaxPoolSize(maxPool)
	}
	mc, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to MongoDB at %s: %w", redact.URL(uri), redact.Error(err, uri))
	}
	return mc, nil
}

// Redis returns a Redis client for url: one server, Sentinel or Cluster
// (see ParseRedisURL). It connects on first use.
func Redis(url string) (redis.UniversalClient, error) {
	t, err := ParseRedisURL(url)
	if err != nil {
		return nil, err
	}
	return t.Client(), nil
}
