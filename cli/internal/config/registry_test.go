package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/serve"
)

func registry(t *testing.T) *Registry {
	t.Helper()
	r, err := New()
	require.NoError(t, err)
	return r
}

// repoRoot is the folder holding go.work.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "go.work not found above the test")
		dir = parent
	}
}

// envNames are the variable names that match re (its first group) in the
// .go files of the tree that keep (tests or not).
func envNames(t *testing.T, re *regexp.Regexp, keep func(path string) bool) map[string][]string {
	t.Helper()
	root := repoRoot(t)
	found := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "data") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || !keep(path) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			found[m[1]] = append(found[m[1]], rel)
		}
		return nil
	})
	require.NoError(t, err)
	return found
}

// TestEveryEnvTagIsRegistered fails when a setting is added to a struct
// that no role's configuration reaches: the registry would not know it, so
// `kiln config check` would call it unknown.
func TestEveryEnvTagIsRegistered(t *testing.T) {
	r := registry(t)
	tags := envNames(t, regexp.MustCompile(`\benv:"([A-Za-z0-9_]+)`), func(path string) bool { return !strings.HasSuffix(path, "_test.go") })
	require.Greater(t, len(tags), 100, "the tree's env tags were found")
	for name, files := range tags {
		_, ok := r.Lookup(name)
		require.True(t, ok, "%s (%s) is read by no role's configuration: reach it from a role's config struct, or list it in tools.go", name, strings.Join(files, ", "))
	}
}

// TestEveryVariableReadIsRegistered fails when code or a test reads a
// variable with Kiln's prefixes by name that the registry does not list.
func TestEveryVariableReadIsRegistered(t *testing.T) {
	r := registry(t)
	reads := envNames(t, regexp.MustCompile(`(?i)(?:getenv|lookupenv)\("([A-Z0-9_]+)"\)`), func(string) bool { return true })
	require.Contains(t, reads, "KILN_FAULTS", "the tree's reads were found")
	for name, files := range reads {
		if !slices.ContainsFunc(r.Prefixes(), func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		_, ok := r.Lookup(name)
		require.True(t, ok, "%s is read (%s) but not registered: add it to tools.go and about.go", name, strings.Join(files, ", "))
	}
}

// TestEverySettingIsDescribed fails when a setting has no description, or
// a description names no setting.
func TestEverySettingIsDescribed(t *testing.T) {
	r := registry(t)
	about := descriptions()
	for _, s := range r.Settings("") {
		require.NotEmpty(t, s.Description, "%s has no description in about.go", s.Name)
		require.NotEmpty(t, s.Roles(), "%s is read by nobody", s.Name)
	}
	for name := range about {
		_, ok := r.Lookup(name)
		require.True(t, ok, "about.go describes %s, which nothing reads", name)
	}
}

func TestEveryRoleIsARole(t *testing.T) {
	readers := Readers()
	require.Equal(t, Standalone, readers[0])
	for _, role := range serve.RoleNames() {
		require.Contains(t, readers, role, "kiln serve %s has its settings in the registry", role)
	}
}

// TestRegistry checks what the registry says of a few settings against the
// roles' structs.
func TestRegistry(t *testing.T) {
	r := registry(t)
	for _, tc := range []struct {
		name     string
		defaults map[string]string
		secret   bool
	}{
		{"INGEST_MAX_BATCH", map[string]string{Standalone: "1000", "ingest": "1000", "realtime": "1000"}, false},
		// kiln run sets its own listeners; realtime parses ingest's settings.
		{"INGEST_ADDR", map[string]string{"ingest": ":8080", "realtime": ":8080"}, false},
		// The standalone's own MONGO_URI (embedded FerretDB when empty), not
		// the projector's copy it overrides.
		{"MONGO_URI", map[string]string{Standalone: "", "projector": "mongodb://127.0.0.1:27017", "notifier": "mongodb://127.0.0.1:27017",
			"gateway": "mongodb://127.0.0.1:27017", "webhooks": "mongodb://127.0.0.1:27017", "realtime": "mongodb://127.0.0.1:27017",
			CLI: "mongodb://127.0.0.1:27017"}, false},
		{"LOG_LEVEL", map[string]string{Standalone: "info", "ingest": "info", "projector": "info", "notifier": "info", "gateway": "info",
			"webhooks": "info", "realtime": "info"}, false},
		{"KILN_TOKEN_SECRETS", map[string]string{Standalone: "", "gateway": "", "webhooks": "", "realtime": "", CLI: ""}, true},
		{"SLACK_WEBHOOK_URL", map[string]string{Standalone: "", "notifier": ""}, true},
		{"WS_TOKEN", map[string]string{Standalone: "", "realtime": ""}, true},
		{"SMTP_PASSWORD", map[string]string{Standalone: "", "notifier": ""}, true},
		{"KILN_API_KEY", map[string]string{Loadtest: ""}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := r.Lookup(tc.name)
			require.True(t, ok)
			require.Equal(t, tc.defaults, s.Defaults)
			require.Equal(t, tc.secret, s.Secret)
		})
	}
}
