package testsupport

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// runnerPkg is the import path of the FerretDB runner command.
const runnerPkg = "github.com/kilnhq/kiln/testsupport/cmd/ferretdb-runner"

// runnerBuild is the only package-level state: the runner binary is built
// (or found in the cache) at most once per test binary.
var runnerBuild struct {
	once sync.Once
	path string
	err  error
}

// ferretDBRunner returns the path of the ferretdb-runner binary, building it
// on first use.
func ferretDBRunner(t testing.TB) string {
	t.Helper()

	runnerBuild.once.Do(func() {
		runnerBuild.path, runnerBuild.err = buildRunner()
	})
	if runnerBuild.err != nil {
		t.Fatalf("testsupport: building ferretdb-runner: %v", runnerBuild.err)
	}
	return runnerBuild.path
}

// buildRunner builds the runner without -race into
// os.TempDir()/kiln-testsupport/ferretdb-runner-<key>, where key hashes the
// Go version, platform and the testsupport module's go.mod, go.sum and
// runner source. A binary already there is reused, so concurrent test
// binaries of `go test ./...` share one build.
func buildRunner() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is needed to build FerretDB for tests: %w", err)
	}
	modDir, err := moduleDir(goBin)
	if err != nil {
		return "", err
	}

	h := sha256.New()
	fmt.Fprintln(h, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	for _, name := range []string{"go.mod", "go.sum", filepath.Join("cmd", "ferretdb-runner", "main.go")} {
		b, err := os.ReadFile(filepath.Join(modDir, name))
		if err != nil {
			return "", err
		}
		fmt.Fprintln(h, name, len(b))
		h.Write(b)
	}
	cacheDir := filepath.Join(os.TempDir(), "kiln-testsupport")
	bin := filepath.Join(cacheDir, "ferretdb-runner-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}

	// Build next to the final path, then rename: atomic for concurrent builders.
	tmp, err := os.CreateTemp(cacheDir, "ferretdb-runner-*.tmp")
	if err != nil {
		return "", err
	}
	_ = tmp.Close()
	defer os.Remove(tmp.Name())

	cmd := exec.Command(goBin, "build", "-o", tmp.Name(), runnerPkg)
	cmd.Dir = modDir
	// GOWORK=off: the module builds alone, whatever state the workspace is in.
	// GOFLAGS= : never inherit -race (or anything else) from the caller.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s in %s: %w\n%s", runnerPkg, modDir, err, out)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// moduleDir returns the testsupport module's source directory: next to this
// file if the source path is available, else as resolved by `go list`.
func moduleDir(goBin string) (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok {
		dir := filepath.Dir(file)
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
	}
	out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}", "github.com/kilnhq/kiln/testsupport").Output()
	if err != nil {
		return "", fmt.Errorf("locating module github.com/kilnhq/kiln/testsupport: %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("module github.com/kilnhq/kiln/testsupport has no source directory")
	}
	return dir, nil
}
