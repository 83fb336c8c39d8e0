package faults

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binaries are the commands the suite runs as processes, each built once
// per test binary when a test first needs it (without -race: they are the
// system under test, not the test), by the name of its file. rev, when
// set, is a commit of the repository's history built instead of the
// working tree (the upgrade test's previous release).
var binaries = map[string]struct {
	pkg, file string
	args      []string
	rev       string
}{
	"ingest":        {"./cli/cmd/kiln", "kiln-ingest", []string{"serve", "ingest"}, ""},
	"projector":     {"./cli/cmd/kiln", "kiln-projector", []string{"serve", "projector"}, ""},
	"notifier":      {"./cli/cmd/kiln", "kiln-notifier", []string{"serve", "notifier"}, ""},
	"standalone":    {"./cli/cmd/kiln", "kiln-standalone", []string{"run"}, ""},
	"kiln":          {"./cli/cmd/kiln", "kiln", nil, ""},
	"kiln-previous": {"./cli/cmd/kiln", "kiln-previous", nil, previousRelease},
}

var (
	buildMu  sync.Mutex
	binDir   string
	built    = map[string]error{}
	buildErr error // creating binDir
)

// bin returns the path of a built command.
func bin(t testing.TB, name string) string {
	t.Helper()
	b, ok := binaries[name]
	if !ok {
		t.Fatalf("faults: no command %q", name)
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if binDir == "" && buildErr == nil {
		binDir, buildErr = os.MkdirTemp("", "kiln-faults-bin-")
	}
	if buildErr != nil {
		t.Fatalf("faults: %v", buildErr)
	}
	err, done := built[name]
	if !done {
		err = build(b.pkg, b.rev, filepath.Join(binDir, b.file))
		built[name] = err
	}
	if err != nil {
		t.Fatalf("faults: %v", err)
	}
	return filepath.Join(binDir, b.file)
}

func build(pkg, rev, out string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if rev != "" { // its own tree and go.work; -trimpath keeps the build cache warm across runs
		if cmd.Dir, err = extract(root, rev, out+"-src"); err != nil {
			return err
		}
		cmd.Args = slices.Insert(cmd.Args, 2, "-trimpath")
		cmd.Env = append(cmd.Env, "GOWORK="+filepath.Join(cmd.Dir, "go.work"))
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// repoRoot is the workspace root (the directory of go.work).
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOWORK: %w", err)
	}
	work := strings.TrimSpace(string(out))
	if work == "" || work == "off" {
		return "", fmt.Errorf("the fault suite runs in the Kiln workspace (go.work)")
	}
	return filepath.Dir(work), nil
}

// proc is one process of the system under test; its output goes to a log
// file that is printed when the test fails.
type proc struct {
	t    testing.TB
	name string
	path string
	args []string
	env  []string
	log  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	runs   int
}

func newProc(t testing.TB, name string, env map[string]string) *proc {
	return newCommand(t, name, bin(t, name), binaries[name].args, env)
}

// newCommand is a process of any program.
func newCommand(t testing.TB, name, path string, args []string, env map[string]string) *proc {
	p := &proc{t: t, name: name, path: path, args: args, log: filepath.Join(t.TempDir(), name+".log")}
	for k, v := range env {
		p.env = append(p.env, k+"="+v)
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			if b, err := os.ReadFile(p.log); err == nil {
				t.Logf("%s log (last 4 KiB):\n%s", name, tail(b, 4096))
			}
		}
	})
	return p
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b
}

// start runs the process (again).
func (p *proc) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatalf("faults: %s log: %v", p.name, err)
	}
	p.runs++
	fmt.Fprintf(f, "---- run %d at %s\n", p.runs, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		p.t.Fatalf("faults: start %s: %v", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() { p.signal(syscall.SIGKILL, 0) }

// stop asks the process to stop (SIGTERM) and kills it after 20 s.
func (p *proc) stop() { p.signal(syscall.SIGTERM, 20*time.Second) }

func (p *proc) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-exited:
			return
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-exited
}

// pid is the running process's id, 0 when it is not running.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}
