package deployments

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/notifier"
	"github.com/kilnhq/kiln/projector"
	"github.com/kilnhq/kiln/standalone"
)

// deployedService is a service that runs as its own container in compose
// and as its own Deployment in Kubernetes.
type deployedService struct {
	name   string // compose service and README "used by" name
	config any    // its Config struct, whose env tags are what it reads
	port   string // admin port: health checks and probes
}

func deployedServices() []deployedService {
	return []deployedService{
		{name: "ingest", config: ingest.Config{}, port: "9101"},
		{name: "projector", config: projector.Config{}, port: "9103"},
		{name: "gateway", config: gateway.Config{}, port: "9102"},
		{name: "notifier", config: notifier.Config{}, port: "9104"},
	}
}

// notDeployed lists variables a service reads that compose and the
// manifests deliberately leave unset, with the reason. Empty today: every
// setting is deployed with its value spelled out. An entry that no service
// reads fails the test, so the list cannot go stale.
func notDeployed() map[string]string {
	return map[string]string{}
}

// envVars returns every variable the struct type t reads, following nested
// structs (with their envPrefix), as caarlos0/env does.
func envVars(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if tag, ok := f.Tag.Lookup("env"); ok {
			name, _, _ := strings.Cut(tag, ",")
			if name != "" {
				out = append(out, prefix+name)
				continue
			}
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() != "time" {
			out = append(out, envVars(ft, prefix+f.Tag.Get("envPrefix"))...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
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

// readmeConfig parses README.md's configuration table: variable → the
// services named in its "used by" column (a variable may have several rows).
func readmeConfig(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	require.NoError(t, err)
	text := string(b)
	start := strings.Index(text, "\n## Configuration")
	require.GreaterOrEqual(t, start, 0, "README.md has a ## Configuration section")
	section := text[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
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
	require.NotEmpty(t, out, "no rows found in README.md's configuration table")
	return out
}

func TestConfigParityReadme(t *testing.T) {
	documented := readmeConfig(t)
	for _, svc := range deployedServices() {
		for _, v := range envVars(reflect.TypeOf(svc.config), "") {
			require.Contains(t, documented, v, "README.md's configuration table lacks %s (read by %s)", v, svc.name)
			require.Contains(t, documented[v], svc.name,
				"README.md's configuration table: %s is read by %s, but its \"used by\" says %v", v, svc.name, documented[v])
		}
	}
	// The standalone runner reads its own settings and the services' ones.
	for _, v := range envVars(reflect.TypeFor[standalone.Config](), "") {
		require.Contains(t, documented, v, "README.md's configuration table lacks %s (read by standalone)", v)
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
	for v := range documented {
		require.True(t, read[v], "README.md documents %s, which no service reads", v)
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
