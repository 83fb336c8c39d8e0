package standalone_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone"
	"github.com/kilnhq/kiln/testsupport"
)

// TestMakeRunTalksToARealRedisServer starts kiln run as `make run` does:
// the kiln binary in a fresh working directory, no KILN_DATA_DIR (so the
// default, relative ./data) and no Redis settings; only the ports are moved
// to free ones. The Redis it reports must be a live redis-server child, not
// the in-process miniredis (which a relative data folder used to cause:
// redis-server was given paths relative to a directory it was already in).
func TestMakeRunTalksToARealRedisServer(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not on PATH (make test installs it): %v", err)
	}
	bin := buildKiln(t)
	wd := t.TempDir()
	port := strconv.Itoa(testsupport.FreePort(t))
	env := environWithout("KILN_DATA_DIR", "REDIS_URL", "REDIS_PORT", "MONGO_URI")
	env = append(env, "PORT="+port, "ADMIN_PORT="+strconv.Itoa(testsupport.FreePort(t)),
		"NATS_PORT="+strconv.Itoa(testsupport.FreePort(t)), "MONGO_PORT="+strconv.Itoa(testsupport.FreePort(t)),
		"GRPC_ADDR=127.0.0.1:"+strconv.Itoa(testsupport.FreePort(t)))

	log := &testsupport.LogBuffer{}
	cmd := exec.Command(bin, "run")
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = wd, env, log, log
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	// Stop kiln, then whatever it started that outlived it (its
	// redis-server child when kiln had to be killed).
	t.Cleanup(func() {
		children := childPIDs(cmd.Process.Pid)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-exited
		}
		for _, pid := range children {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("kiln run log:\n%s", log)
		}
	})

	require.Eventually(t, func() bool {
		select {
		case <-exited:
			return true // reported below
		default:
		}
		resp, err := http.Get("http://127.0.0.1:" + port + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 5*time.Minute, 100*time.Millisecond, "kiln run never became ready")
	select {
	case <-exited:
		t.Fatalf("kiln run exited: %s", log)
	default:
	}

	b, err := os.ReadFile(filepath.Join(wd, "data", standalone.DiscoveryFile))
	require.NoError(t, err, "the discovery file is in ./data under the working directory")
	var d struct{ RedisURL string }
	require.NoError(t, json.Unmarshal(b, &d))
	opts, err := redis.ParseURL(d.RedisURL)
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	info, err := rdb.Info(context.Background(), "server").Result()
	require.NoError(t, err, "INFO server (miniredis does not answer it)")
	version, pid := infoField(info, "redis_version"), infoField(info, "process_id")
	require.NotEmpty(t, version, "INFO server names a redis_version:\n%s", info)
	n, err := strconv.Atoi(pid)
	require.NoError(t, err, "INFO server names a process_id:\n%s", info)
	require.NotEqual(t, cmd.Process.Pid, n, "Redis is served by kiln itself (miniredis)")
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", n))
	require.NoError(t, err, "process %d (redis) is alive", n)
	require.True(t, strings.HasPrefix(string(comm), "redis-server"), "process %d is %q", n, comm)
	require.Contains(t, childPIDs(cmd.Process.Pid), n, "the redis-server is kiln's child")
	require.Contains(t, log.String(), "redis-server "+version, "the log names the Redis chosen")
	require.DirExists(t, filepath.Join(wd, "data", "redis"), "its files are under ./data")
}

// buildKiln builds the kiln binary (as `make run` runs it) into a temp dir.
func buildKiln(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOWORK").Output()
	require.NoError(t, err)
	work := strings.TrimSpace(string(out))
	if work == "" || work == "off" {
		t.Skip("builds ./cli/cmd/kiln: needs the Kiln workspace (go.work)")
	}
	bin := filepath.Join(t.TempDir(), "kiln")
	build := exec.Command("go", "build", "-o", bin, "./cli/cmd/kiln")
	build.Dir = filepath.Dir(work)
	b, err := build.CombinedOutput()
	require.NoError(t, err, "go build ./cli/cmd/kiln:\n%s", b)
	return bin
}

// environWithout is this process's environment without the named variables.
func environWithout(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, k) {
			env = append(env, kv)
		}
	}
	return env
}

// childPIDs lists pid's child processes (Linux /proc).
func childPIDs(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var pids []int
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

// infoField is one field of an INFO answer ("" when absent).
func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}
