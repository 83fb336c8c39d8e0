package deployments

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/serve"
	"github.com/kilnhq/kiln/app/standalone"
	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/notifier"
	"github.com/kilnhq/kiln/projector"
)

// deployedService is a service that runs as its own container in compose
// and as its own Deployment in Kubernetes.
type deployedService struct {
	name   string // compose service and docs/configuration.md "used by" name
	config any    // its Config struct, whose env tags are what it reads
	port   string // admin port: health checks and probes
	// singleton, when set, says why the role must run as exactly one
	// process; every other role runs at least two (replicas_test.go).
	singleton string
}

func deployedServices() []deployedService {
	return []deployedService{
		{name: "ingest", config: ingest.Config{}, port: "9101"},
		{name: "projector", config: projector.Config{}, port: "9103"},
		{name: "gateway", config: gateway.Config{}, port: "9102"},
		// The notifier runs two, one active and one hot standby (a lease).
		{name: "notifier", config: notifier.Config{}, port: "9104"},
		{name: "webhooks", config: serve.WebhooksConfig{}, port: "9105"},
		{name: "realtime", config: serve.RealtimeConfig{}, port: "9106"},
	}
}

// notDeployed lists variables a service reads that compose and the
// manifests deliberately leave unset, with the reason. Empty today: every
// setting is deployed with its value spelled out. An entry that no service
// reads fails the test, so the list cannot go stale.
func notDeployed() map[string]string {
	return map[string]string{}
}

// deploymentValues lists variables that compose or the manifests set to
// something other than the service's default, on purpose. Every other
// variable is left empty there (the service applies its own default) or
// spelled out with the default itself, so a changed default cannot be
// silently pinned to its old value by a deployment file.
func deploymentValues() map[string]string {
	return map[string]string{
		"NATS_URL":            "the NATS service(s) instead of localhost",
		"MONGO_URI":           "the MongoDB replica set instead of localhost",
		"REDIS_URL":           "the Redis service instead of localhost",
		"STREAM_REPLICAS":     "3 on the Kubernetes NATS cluster",
		"NOTIFIER_RULES_FILE": "the mounted rules file",
		"SMTP_HOST":           "compose: Mailpit",
		"SMTP_PORT":           "compose: Mailpit's port 1025",
		"SMTP_TLS":            "compose: Mailpit speaks plain SMTP",
		"SMTP_FROM":           "compose: a sender for Mailpit",
		"SMTP_TO":             "compose: a recipient for Mailpit",
		// The admin listeners bind loopback by default (no auth); the
		// containers publish them to the probes and Prometheus.
		"INGEST_ADMIN_ADDR":    "all interfaces in a container (the default is loopback)",
		"PROJECTOR_ADMIN_ADDR": "all interfaces in a container (the default is loopback)",
		"GATEWAY_ADMIN_ADDR":   "all interfaces in a container (the default is loopback)",
		"NOTIFIER_ADMIN_ADDR":  "all interfaces in a container (the default is loopback)",
		"WEBHOOKS_ADMIN_ADDR":  "all interfaces in a container (the default is loopback)",
		"REALTIME_ADMIN_ADDR":  "all interfaces in a container (the default is loopback)",
		// A deployment names the sites browsers may call it from.
		"KILN_ALLOWED_ORIGINS": "the front ends' origins instead of any (*)",
	}
}

// envVars returns every variable the struct type t reads, following nested
// structs (with their envPrefix), as caarlos0/env does.
func envVars(t reflect.Type, prefix string) []string {
	defaults := envDefaults(t, prefix)
	out := make([]string, 0, len(defaults))
	for v := range defaults {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// envDefaults maps every variable the struct type t reads to its
// envDefault ("" without one).
func envDefaults(t reflect.Type, prefix string) map[string]string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out := map[string]string{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if tag, ok := f.Tag.Lookup("env"); ok {
			name, _, _ := strings.Cut(tag, ",")
			if name != "" {
				out[prefix+name] = f.Tag.Get("envDefault")
				continue
			}
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() != "time" {
			maps.Copy(out, envDefaults(ft, prefix+f.Tag.Get("envPrefix")))
		}
	}
	return out
}

// composeValue is the value compose gives a variable without a .env:
// the default of ${VAR:-default}, or the literal.
func composeValue(v any) string {
	s := fmt.Sprint(v)
	if m := regexp.MustCompile(`^\$\{[A-Z0-9_]+:-(.*)\}$`).FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return s
}

func TestEnvVarsReflection(t *testing.T) {
	// Nested structs without a prefix (StreamOptions in ingest, SSEConfig in
	// the gateway) are followed.
	got := envVars(reflect.TypeFor[ingest.Config](), "")
	require.Contains(t, got, "STREAM_REPLICAS")
	require.Contains(t, got, "KILN_INGEST_KEYS")
	require.Contains(t, envVars(reflect.TypeFor[gateway.Config](), ""), "GATEWAY_SSE_HEARTBEAT")

	type inner struct {
		B string `env:"B"`
	}
	type outer struct {
		A     string `env:"A,required"`
		Inner inner  `envPrefix:"X_"`
		Ptr   *inner `envPrefix:"P_"`
	}
	require.Equal(t, []string{"A", "P_B", "X_B"}, envVars(reflect.TypeFor[outer](), ""))
}

// readmeConfig parses docs/configuration.md's table: variable → the
// services named in its "used by" column (a variable may have several rows).
func readmeConfig(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	require.NoError(t, err)
	section := string(b)
	row := regexp.MustCompile("^\\| `([A-Z0-9_]+)` \\|[^|]*\\|([^|]*)\\|")
	out := map[string][]string{}
	for line := range strings.SplitSeq(section, "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for svc := range strings.SplitSeq(m[2], ",") {
			out[m[1]] = append(out[m[1]], strings.TrimSpace(svc))
		}
	}
	require.NotEmpty(t, out, "no rows found in docs/configuration.md's table")
	return out
}

func TestConfigParityReadme(t *testing.T) {
	documented := readmeConfig(t)
	for _, svc := range deployedServices() {
		for _, v := range envVars(reflect.TypeOf(svc.config), "") {
			require.Contains(t, documented, v, "docs/configuration.md's table lacks %s (read by %s)", v, svc.name)
			require.Contains(t, documented[v], svc.name,
				"docs/configuration.md's table: %s is read by %s, but its \"used by\" says %v", v, svc.name, documented[v])
		}
	}
	// The standalone runner reads its own settings and the services' ones;
	// every kiln run and kiln serve reads the log settings.
	for _, v := range envVars(reflect.TypeFor[standalone.Config](), "") {
		require.Contains(t, documented, v, "docs/configuration.md's table lacks %s (read by standalone)", v)
	}
	for _, v := range envVars(reflect.TypeFor[serve.Logging](), "") {
		require.Contains(t, documented, v, "docs/configuration.md's table lacks %s (read by every kiln run and kiln serve)", v)
	}
	// And the table documents nothing that no one reads.
	read := map[string]bool{}
	for _, svc := range deployedServices() {
		for _, v := range envVars(reflect.TypeOf(svc.config), "") {
			read[v] = true
		}
	}
	for _, v := range envVars(reflect.TypeFor[standalone.Config](), "") {
		read[v] = true
	}
	for _, v := range envVars(reflect.TypeFor[serve.Logging](), "") {
		read[v] = true
	}
	for v := range documented {
		require.True(t, read[v], "docs/configuration.md documents %s, which no service reads", v)
	}
}

func TestConfigParityCompose(t *testing.T) {
	compose := loadCompose(t)
	skip := notDeployed()
	for _, svc := range deployedServices() {
		s, ok := compose.Services[svc.name]
		require.True(t, ok, "docker-compose.yml has no service %q", svc.name)
		for _, v := range envVars(reflect.TypeOf(svc.config), "") {
			if _, ok := skip[v]; ok {
				continue
			}
			require.Contains(t, s.Environment, v, "docker-compose.yml: service %s does not set %s", svc.name, v)
		}
		for v, def := range envDefaults(reflect.TypeOf(svc.config), "") {
			val, ok := s.Environment[v]
			if _, special := deploymentValues()[v]; !ok || special {
				continue
			}
			got := composeValue(val)
			require.True(t, got == "" || got == def,
				"docker-compose.yml: service %s sets %s to %q, but its default is %q: leave it empty (${%s:-}) or list it in deploymentValues",
				svc.name, v, got, def, v)
		}
	}
}

func TestConfigParityKubernetes(t *testing.T) {
	objs := loadManifests(t)
	skip := notDeployed()
	for _, svc := range deployedServices() {
		set := deploymentEnv(t, objs, "kiln-"+svc.name)
		for _, v := range envVars(reflect.TypeOf(svc.config), "") {
			if _, ok := skip[v]; ok {
				continue
			}
			require.Contains(t, set, v, "deployments/k8s: Deployment kiln-%s does not set %s", svc.name, v)
		}
		for v, def := range envDefaults(reflect.TypeOf(svc.config), "") {
			got, ok := set[v]
			if _, special := deploymentValues()[v]; !ok || special || got == fromSecret {
				continue
			}
			require.True(t, got == "" || got == def,
				"deployments/k8s: kiln-%s sets %s to %q, but its default is %q: leave it empty or list it in deploymentValues",
				svc.name, v, got, def)
		}
	}
}

func TestConfigParityAllowlist(t *testing.T) {
	read := map[string]bool{}
	for _, svc := range deployedServices() {
		for _, v := range envVars(reflect.TypeOf(svc.config), "") {
			read[v] = true
		}
	}
	names := make([]string, 0, len(notDeployed()))
	for v := range notDeployed() {
		names = append(names, v)
	}
	sort.Strings(names)
	for _, v := range names {
		require.True(t, read[v], "notDeployed lists %s, which no deployed service reads", v)
	}
}
