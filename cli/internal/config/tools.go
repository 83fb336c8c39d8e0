package config

import "github.com/kilnhq/kiln/connect"

// The tools that read a few variables besides the roles: the operations
// commands (`kiln replay`, `kiln webhooks`, `kiln tokens`, …), `docker
// compose`, the load tools in loadtest/cmd, and the tests.
const (
	CLI      = "cli"
	Compose  = "compose"
	Loadtest = "loadtest"
	Tests    = "tests"
)

// toolReaders are the tools, in Readers order.
func toolReaders() []string { return []string{CLI, Compose, Loadtest, Tests} }

// tool is a variable a tool reads, with its default there.
type tool struct {
	name    string
	def     string
	readers []string
}

// tools are the variables the tools read (see about.go for what they do).
// The operations commands' connection flags default to the roles'
// variables, else to what a standalone running from the same folder wrote
// in KILN_DATA_DIR (cli/internal/command/discovery.go).
func tools() []tool {
	stores := connect.DefaultStores()
	return []tool{
		{name: "NATS_URL", def: stores.NATSURL, readers: []string{CLI}},
		{name: "MONGO_URI", def: stores.MongoURI, readers: []string{CLI}},
		{name: "MONGO_DATABASE", def: stores.MongoDatabase, readers: []string{CLI}},
		{name: "REDIS_URL", def: stores.RedisURL, readers: []string{CLI}},
		{name: "KILN_DATA_DIR", def: "./data", readers: []string{CLI}},
		{name: "KILN_TOKEN_SECRETS", readers: []string{CLI}},
		{name: "KILN_TOKEN_AUDIENCE", readers: []string{CLI}},
		{name: "KILN_TOKEN_ISSUER", readers: []string{CLI}},
		{name: "KILN_URL", def: "http://127.0.0.1:8080", readers: []string{CLI}},
		{name: "KILN_ADMIN_KEY", readers: []string{CLI, Loadtest}},
		{name: "KILN_API_KEY", readers: []string{Loadtest}},
		{name: "KILN_INGEST_KEY", readers: []string{Loadtest}},
		{name: "KILN_VERSION", def: "dev", readers: []string{Compose}},
		{name: "KILN_IMAGE_PREFIX", def: "ghcr.io/kilnhq", readers: []string{Compose}},
		{name: "NATS_CONFIG", def: "nats.conf", readers: []string{Compose}},
		{name: "KILN_FAULTS", readers: []string{Tests}},
		{name: "KILN_FAULT_OUTAGE", readers: []string{Tests}},
		{name: "KILN_SOAK_DURATION", readers: []string{Tests}},
		{name: "KILN_SSE_LOAD", readers: []string{Tests}},
		{name: "KILN_REPLAY_EVENTS", readers: []string{Tests}},
		{name: "KILN_LOAD_DURATION", readers: []string{Tests}},
		{name: "KILN_LOAD_SCENARIOS", readers: []string{Tests}},
		{name: "KILN_TEST_WEBHOOK_BACKLOG", readers: []string{Tests}},
		{name: "KILN_TEST_REDIS_PARENT_DIR", readers: []string{Tests}},
		{name: "KILN_SCREENSHOT", readers: []string{Tests}},
		{name: "KILN_HOSTILE_SCALE", readers: []string{Tests}},
		{name: "KILN_UPGRADE", readers: []string{Tests}},
		{name: "KILN_CLUSTER", readers: []string{Tests}},
		{name: "KILN_SCALE", readers: []string{Tests}},
	}
}
