package realtime_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// protocVersion is the header line that names the protoc that generated a
// file; it differs between machines and says nothing about the code.
var protocVersion = regexp.MustCompile(`(?m)^// \tprotoc +.*\n`)

// TestGeneratedCodeIsFresh regenerates the protos' Go code and fails when
// the committed gen/ differs: run ./generate.sh after editing a .proto.
func TestGeneratedCodeIsFresh(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command("bash", "generate.sh", out)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Run(), "generate.sh needs protoc (scripts/install-test-deps installs it)")
	want := map[string]string{}
	require.NoError(t, filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(out, p)
		want[rel] = protocVersion.ReplaceAllString(string(b), "")
		return err
	}))
	got := map[string]string{}
	require.NoError(t, filepath.WalkDir("gen", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel("gen", p)
		got[rel] = protocVersion.ReplaceAllString(string(b), "")
		return err
	}))
	require.NotEmpty(t, want)
	for name, code := range want {
		require.Equal(t, code, got[name], "gen/%s is stale: run realtime/generate.sh", name)
	}
	for name := range got {
		require.Contains(t, want, name, "gen/%s is not generated from any .proto: remove it", name)
	}
}
