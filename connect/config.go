package connect

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/kilnhq/kiln/connect/envconfig"
	"github.com/kilnhq/kiln/telemetry/redact"
)

// The stores' settings, one struct each, embedded in the configuration of
// every role that uses the store, so each setting has one name, one
// default and one validation.

// NATSConfig is where the NATS servers are.
type NATSConfig struct {
	// NATSURL lists the NATS servers, comma-separated (give every node of
	// a cluster).
	NATSURL string `env:"NATS_URL" envDefault:"nats://127.0.0.1:4222"`
}

// Validate reports an empty NATS_URL.
func (c NATSConfig) Validate() error {
	if c.NATSURL == "" {
		return errors.New("NATS_URL must not be empty")
	}
	return nil
}

// MongoConfig is the MongoDB holding the read models and where in it.
type MongoConfig struct {
	MongoURI      string `env:"MONGO_URI" envDefault:"mongodb://127.0.0.1:27017"`
	MongoDatabase string `env:"MONGO_DATABASE" envDefault:"kiln"`
}

// Validate reports a MONGO_URI that is not a MongoDB URI and a
// MONGO_DATABASE MongoDB would refuse.
func (c MongoConfig) Validate() error {
	var errs []error
	if u, err := url.Parse(c.MongoURI); err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") {
		errs = append(errs, fmt.Errorf("MONGO_URI must be a mongodb:// or mongodb+srv:// URI, got %q", redact.URL(c.MongoURI)))
	}
	// MongoDB refuses these characters in database names.
	if c.MongoDatabase == "" || len(c.MongoDatabase) > 63 || strings.ContainsAny(c.MongoDatabase, "/\\. \"$*<>:|?\x00") {
		errs = append(errs, fmt.Errorf("MONGO_DATABASE must be 1-63 characters without /\\. \"$*<>:|?, got %q", c.MongoDatabase))
	}
	return errors.Join(errs...)
}

// RedisConfig is the Redis holding the counters and the recent cache.
type RedisConfig struct {
	RedisURL string `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
}

// Validate reports a REDIS_URL that is none of the forms ParseRedisURL
// takes.
func (c RedisConfig) Validate() error {
	_, err := ParseRedisURL(c.RedisURL)
	return err
}

// Stores are the three stores' settings together: what the operations
// commands connect to.
type Stores struct {
	NATSConfig
	MongoConfig
	RedisConfig
}

// Validate reports every store setting that is wrong.
func (s *Stores) Validate() error {
	return errors.Join(s.NATSConfig.Validate(), s.MongoConfig.Validate(), s.RedisConfig.Validate())
}

// DefaultStores are the store settings with none set: the defaults in
// the tags above, read from there so that the operations commands' flags
// and the settings table name the same ones. It panics if a tag is
// malformed, a mistake every test of the CLI shows at once.
func DefaultStores() Stores {
	s, err := envconfig.Load[Stores](map[string]string{}, "stores")
	if err != nil {
		panic(err)
	}
	return s
}
