package deployments

import (
	"debug/elf"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// binaries are Kiln's commands, release name → package: one, kiln (kiln
// run, kiln serve <role>, the operations commands). The Makefile's
// BINARIES, .goreleaser.yaml and the Dockerfile build the same
// (release_test.go checks them against this list).
func binaries() map[string]string {
	return map[string]string{"kiln": "./cli/cmd/kiln"}
}

// TestBuildLinuxStatic does what the Dockerfile's build stage does, since
// docker cannot run here: every command builds with CGO_ENABLED=0
// GOOS=linux into a static executable that reports the version it was
// given with -ldflags -X.
func TestBuildLinuxStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goBin, err := exec.LookPath("go")
	require.NoError(t, err)
	const version = "v0.0.0-buildtest"
	out := t.TempDir()
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -X main.version=" + version, "-o", out + string(filepath.Separator)}
	for _, pkg := range binaries() {
		args = append(args, pkg)
	}
	cmd := exec.Command(goBin, args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "CGO_ENABLED=0 GOOS=linux go build:\n%s", b)

	for name, pkg := range binaries() {
		bin := filepath.Join(out, path.Base(pkg)) // go build names a binary after its package directory
		f, err := elf.Open(bin)
		require.NoError(t, err, name)
		for _, p := range f.Progs {
			require.NotEqual(t, elf.PT_INTERP, p.Type, "%s is dynamically linked", name)
		}
		require.Nil(t, f.Section(".dynamic"), "%s has a dynamic section", name)
		require.NoError(t, f.Close())
		if runtime.GOOS != "linux" {
			continue
		}
		for _, args := range [][]string{{"--version"}, {"version"}} {
			got, err := exec.Command(bin, args...).Output()
			require.NoError(t, err, "%s %v", name, args)
			require.Equal(t, version, strings.TrimSpace(string(got)), "%s %v", name, args)
		}
	}
}
