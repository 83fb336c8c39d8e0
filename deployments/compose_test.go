package deployments

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// composeFile is the part of docker-compose.yml the tests read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string         `yaml:"image"`
	Command     []string       `yaml:"command"`
	Profiles    []string       `yaml:"profiles"`
	Environment map[string]any `yaml:"environment"`
	Volumes     []string       `yaml:"volumes"`
	Ports       []string       `yaml:"ports"`
	Networks    map[string]struct {
		Aliases []string `yaml:"aliases"`
	} `yaml:"networks"`
	Build *struct {
		Context    string            `yaml:"context"`
		Dockerfile string            `yaml:"dockerfile"`
		Args       map[string]string `yaml:"args"`
	} `yaml:"build"`
	Deploy struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
		Required  *bool  `yaml:"required"`
	} `yaml:"depends_on"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	require.NoError(t, err)
	var c composeFile
	require.NoError(t, yaml.Unmarshal(b, &c), "docker-compose.yml")
	require.NotEmpty(t, c.Services)
	return c
}

func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"nats", "mongo", "redis", "mailpit", "ingest", "projector", "gateway", "notifier", "webhooks", "realtime"} {
		require.Contains(t, c.Services, name)
		require.NotNil(t, c.Services[name].Healthcheck, "service %s has no health check", name)
		require.Empty(t, c.Services[name].Profiles, "service %s must run without a profile", name)
	}
	require.Equal(t, 2, c.Services["projector"].Deploy.Replicas, "two projector replicas")

	// Every dependency waits for a health check that exists.
	for name, s := range c.Services {
		for dep, d := range s.DependsOn {
			require.Contains(t, c.Services, dep, "%s depends on unknown %s", name, dep)
			require.Equal(t, "service_healthy", d.Condition, "%s → %s", name, dep)
			require.NotNil(t, c.Services[dep].Healthcheck, "%s waits for %s, which has no health check", name, dep)
			if len(c.Services[dep].Profiles) > 0 {
				require.NotNil(t, d.Required, "%s → %s: a dependency in a profile must be required: false", name, dep)
				require.False(t, *d.Required, "%s → %s", name, dep)
			}
		}
	}

	// NATS: JetStream config, file store on a named volume, monitoring port.
	nats := c.Services["nats"]
	require.Contains(t, strings.Join(nats.Command, " "), "/etc/nats/${NATS_CONFIG:-nats.conf}")
	require.Contains(t, nats.Volumes, "./deployments/nats:/etc/nats:ro")
	require.Contains(t, nats.Volumes, "nats-data:/data")
	require.Contains(t, c.Volumes, "nats-data")
	require.Contains(t, strings.Join(nats.Healthcheck.Test, " "), ":8222/healthz")

	// The notifier mails Mailpit.
	env := c.Services["notifier"].Environment
	require.Equal(t, "${SMTP_HOST:-mailpit}", env["SMTP_HOST"])
	require.Equal(t, "${SMTP_PORT:-1025}", env["SMTP_PORT"])
	require.Equal(t, "${SMTP_TLS:-none}", env["SMTP_TLS"])
	require.Contains(t, c.Services["notifier"].Volumes, "./notifier/rules.example.yaml:/etc/kiln/rules.yaml:ro")
	require.FileExists(t, filepath.Join("..", "notifier", "rules.example.yaml"))

	// Every role runs the one kiln image, built from the workspace root
	// with a version, as `kiln serve <role>`, checked on its admin port.
	for _, svc := range deployedServices() {
		s := c.Services[svc.name]
		require.NotNil(t, s.Build, "%s: build", svc.name)
		require.Equal(t, ".", s.Build.Context, "%s: built from the workspace root", svc.name)
		require.Equal(t, "deployments/docker/kiln.Dockerfile", s.Build.Dockerfile, svc.name)
		require.FileExists(t, filepath.Join("..", s.Build.Dockerfile))
		require.Contains(t, s.Build.Args, "VERSION")
		require.Equal(t, "${KILN_IMAGE_PREFIX:-ghcr.io/kilnhq}/kiln:${KILN_VERSION:-dev}", s.Image, svc.name)
		require.Equal(t, []string{"serve", svc.name}, s.Command, svc.name)
		require.Equal(t, []string{"CMD", "kiln", "healthcheck", "http://127.0.0.1:" + svc.port + "/readyz"}, s.Healthcheck.Test, svc.name)
	}
	require.Contains(t, c.Services["realtime"].Ports, "9090:9090", "gRPC published")
}

// TestComposeClusterProfile checks the `cluster` profile: three NATS nodes
// from deployments/nats/cluster, and deployments/cluster.env pointing every
// client at all of them with three stream replicas.
func TestComposeClusterProfile(t *testing.T) {
	c := loadCompose(t)
	for _, n := range []string{"nats-2", "nats-3"} {
		s := c.Services[n]
		require.Equal(t, []string{"cluster"}, s.Profiles, n)
		require.Contains(t, strings.Join(s.Command, " "), "/etc/nats/cluster/"+n+".conf")
		require.Contains(t, s.Volumes, n+"-data:/data")
		require.NotNil(t, s.Healthcheck)
	}
	env := readEnvFile(t, "cluster.env")
	require.Equal(t, "cluster", env["COMPOSE_PROFILES"])
	require.Equal(t, "3", env["STREAM_REPLICAS"])
	require.Equal(t, "nats://nats:4222,nats://nats-2:4222,nats://nats-3:4222", env["NATS_URL"])
	// With NATS_CONFIG, the always-on `nats` service is node 1.
	opts := loadNATSConfig(t, filepath.Join("nats", env["NATS_CONFIG"]))
	require.Equal(t, "nats-1", opts.ServerName)
	require.Len(t, opts.Routes, 3)

	// Every service that reads STREAM_REPLICAS takes it from the env file.
	for _, name := range []string{"ingest", "notifier", "webhooks", "realtime"} {
		require.Equal(t, "${STREAM_REPLICAS:-1}", c.Services[name].Environment["STREAM_REPLICAS"], name)
	}
	for _, svc := range deployedServices() {
		require.Equal(t, "${NATS_URL:-nats://nats:4222}", c.Services[svc.name].Environment["NATS_URL"], svc.name)
	}

	// .env.example mentions the same switch.
	example := readEnvFile(t, filepath.Join("..", ".env.example"))
	require.Equal(t, "1", example["STREAM_REPLICAS"])
	b, err := os.ReadFile(filepath.Join("..", ".env.example"))
	require.NoError(t, err)
	require.Contains(t, string(b), "# COMPOSE_PROFILES=cluster")
}

// readEnvFile reads KEY=VALUE lines, skipping blanks and comments.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "%s: %q is not KEY=VALUE", path, line)
		out[k] = v
	}
	require.NoError(t, sc.Err())
	return out
}

// TestDockerfile checks what a review would: multi-stage, static,
// distroless, non-root, versioned, built from the workspace root, one image
// whose entrypoint is kiln (the standalone by default; roles pass
// `serve <role>`).
func TestDockerfile(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("docker", "*.Dockerfile"))
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join("docker", "kiln.Dockerfile")}, files, "one image")
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	d := string(b)
	for _, want := range []string{
		"AS build", "ARG VERSION", "CGO_ENABLED=0", "-X main.version=${VERSION}",
		"-o /out/kiln ./cli/cmd/kiln",
		"FROM gcr.io/distroless/static-debian12:nonroot AS base", "USER nonroot:nonroot",
		`ENTRYPOINT ["kiln"]`, `CMD ["run"]`,
		`HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["kiln", "healthcheck", "http://127.0.0.1:9100/readyz"]`,
		// goreleaser's target copies its binary from the context.
		"FROM base AS release\nCOPY kiln /usr/local/bin/",
	} {
		require.Contains(t, d, want, "kiln.Dockerfile")
	}
	// The admin listeners bind loopback unless told otherwise: the image
	// opens every role's to the probes.
	for _, svc := range deployedServices() {
		require.Contains(t, d, ":"+svc.port, "kiln.Dockerfile opens %s's admin port", svc.name)
	}
	// The default (last) stage is the one built from source.
	require.True(t, strings.HasSuffix(d, "FROM base\nCOPY --from=build /out/ /usr/local/bin/\n"), "kiln.Dockerfile ends with the source-built stage")
	require.FileExists(t, filepath.Join("..", "cli", "cmd", "kiln", "main.go"))
}
