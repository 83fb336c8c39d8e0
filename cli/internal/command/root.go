// Package command implements the kiln CLI's subcommands.
package command

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/schemas"
)

// IO is the CLI's environment.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// Env is the environment (os.Environ as a map): the services' settings
	// and the connection flags' defaults.
	Env map[string]string
	// Version is printed by kiln --version and logged by running services.
	Version string
}

// Getenv is the environment variable key, "" when unset.
func (io IO) Getenv(key string) string { return io.Env[key] }

// conn holds the connection settings shared by every subcommand and opens
// the connections a subcommand asks for (once each, failing fast).
type conn struct {
	natsURL, mongoURI, mongoDB, redisURL string
	io                                   IO
	conns                                connect.Set
}

func (c *conn) log() *slog.Logger {
	return slog.New(slog.NewTextHandler(c.io.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func (c *conn) jetStream() (jetstream.JetStream, error) {
	nc, err := c.conns.NATS(c.natsURL, "kiln-cli", connect.Command)
	if err != nil {
		return nil, err
	}
	return jetstream.New(nc)
}

// events opens the EVENTS stream.
func (c *conn) events(ctx context.Context) (jetstream.Stream, error) {
	js, err := c.jetStream()
	if err != nil {
		return nil, err
	}
	return eventsStream(ctx, js)
}

// eventsStream is js's EVENTS stream.
func eventsStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, schemas.StreamName)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", schemas.StreamName, err)
	}
	return s, nil
}

func (c *conn) mongo() (*mongo.Database, error) {
	client, err := c.conns.Mongo(c.mongoURI, "kiln-cli", 0)
	if err != nil {
		return nil, err
	}
	return client.Database(c.mongoDB), nil
}

func (c *conn) redis() (redis.UniversalClient, error) {
	return c.conns.Redis(c.redisURL)
}

func (c *conn) close() { c.conns.Close() }

func envOr(get func(string) string, key, def string) string {
	if v := get(key); v != "" {
		return v
	}
	return def
}

// Execute runs the CLI with args (without the program name).
func Execute(ctx context.Context, args []string, io IO) error {
	c := &conn{io: io}
	defer c.close()
	root := newRoot(c)
	root.SetArgs(args)
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.Err)
	return root.ExecuteContext(ctx)
}

// NewRoot is the command tree (for tests that walk it).
func NewRoot(io IO) *cobra.Command { return newRoot(&conn{io: io}) }

func newRoot(c *conn) *cobra.Command {
	io := c.io
	root := &cobra.Command{
		Use:   "kiln",
		Short: "Kiln, an event pipeline: run it (all in one, or one role per process) and operate it",
		Long: `Kiln in one binary. "kiln run" starts everything in one process with embedded
stores (what "make run" starts); "kiln serve <role>" runs one role of a split
deployment; the other commands operate a running Kiln. Settings come from the
environment ("kiln config" lists them; docs/configuration.md); against a
standalone started from the same folder the operations commands need no flags.`,
		Example: `  kiln run
  kiln serve ingest
  kiln projections
  kiln replay counters`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       io.Version,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.CompletionOptions.HiddenDefaultCmd = true
	// The operations commands' connection flags. Defaults: the
	// environment, else a running standalone's discovery file
	// (KILN_DATA_DIR, else ./data), else the usual local ports.
	pf := pflag.NewFlagSet("connections", pflag.ContinueOnError)
	d, def := discover(io.Getenv), connect.DefaultStores()
	pf.StringVar(&c.natsURL, "nats", setting(io.Getenv, "NATS_URL", d.NATSURL, def.NATSURL), "NATS URL (env NATS_URL)")
	pf.StringVar(&c.mongoURI, "mongo", setting(io.Getenv, "MONGO_URI", d.MongoURI, def.MongoURI), "MongoDB URI (env MONGO_URI)")
	pf.StringVar(&c.mongoDB, "mongo-db", setting(io.Getenv, "MONGO_DATABASE", d.MongoDatabase, def.MongoDatabase), "MongoDB database (env MONGO_DATABASE)")
	pf.StringVar(&c.redisURL, "redis", setting(io.Getenv, "REDIS_URL", d.RedisURL, def.RedisURL), "Redis URL (env REDIS_URL)")
	for _, ops := range []*cobra.Command{replayCommand(c), projectionsCommand(c), streamCommand(c), eventsCommand(c), dlqCommand(c), rejectionsCommand(c), backupCommand(c), restoreCommand(c), mirrorCommand(c)} {
		ops.PersistentFlags().AddFlagSet(pf)
		root.AddCommand(ops)
	}
	root.AddCommand(runCommand(io), serveCommand(io), versionCommand(io), healthcheckCommand(io), rulesCommand(io), webhooksCommand(c), schemasCommand(c),
		tokensCommand(io), configCommand(io))
	return root
}
