package embedded

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// Not parallel: it changes the working directory. A relative data folder
// (kiln run's default ./data) used to be resolved twice: redis-server ran
// in data/redis and was told --dir data/redis, so it exited at once.
func TestRedisServerWithARelativeDataDir(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not on PATH (make test installs it): %v", err)
	}
	wd := t.TempDir()
	t.Chdir(wd)
	rs, err := StartRedisServer(context.Background(), bin, 0, "data")
	require.NoError(t, err)
	t.Cleanup(rs.Shutdown)
	require.NotEmpty(t, rs.Version())
	opts, err := redis.ParseURL(rs.URL())
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	dir, err := rdb.ConfigGet(context.Background(), "dir").Result()
	require.NoError(t, err)
	require.Equal(t, filepath.Join(wd, "data", "redis"), dir["dir"])
	require.FileExists(t, filepath.Join(wd, "data", "redis", "redis.log"))
	require.FileExists(t, filepath.Join(wd, "data", "redis", "redis.out"))
}

// A server that exits at start is reported with what it wrote: here a
// shell, which refuses redis-server's arguments on its standard error.
func TestRedisServerThatExitsSaysWhy(t *testing.T) {
	dir := t.TempDir()
	_, err := StartRedisServer(context.Background(), "/bin/sh", 0, dir)
	require.Error(t, err)
	require.Contains(t, err.Error(), "exited at start")
	require.Contains(t, err.Error(), filepath.Join(dir, "redis", "redis.out")+": ")
}

// A kiln killed with SIGKILL used to leave its redis-server running.
// The test binary re-runs itself as the "kiln" that starts the child,
// prints the child's pid, and is then killed.
func TestRedisServerStopsWhenKilnIsKilled(t *testing.T) {
	if dir := os.Getenv("KILN_TEST_REDIS_PARENT_DIR"); dir != "" {
		runRedisParent(dir)
		return
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not on PATH (make test installs it): %v", err)
	}
	parent := exec.Command(os.Args[0], "-test.run", "^TestRedisServerStopsWhenKilnIsKilled$")
	parent.Env = append(os.Environ(), "KILN_TEST_REDIS_PARENT_DIR="+t.TempDir())
	stdout, err := parent.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, parent.Start())
	t.Cleanup(func() { _ = parent.Process.Kill(); _ = parent.Wait() })

	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "the parent printed no redis pid")
	pid, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "redis-pid="))
	require.NoError(t, err, "parent said %q", line)
	require.True(t, processRunning(pid), "redis-server %d is not running", pid)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	require.NoError(t, parent.Process.Signal(syscall.SIGKILL))
	_ = parent.Wait()
	require.Eventually(t, func() bool { return !processRunning(pid) }, 2*time.Minute, 50*time.Millisecond,
		"redis-server %d outlived the kiln that started it", pid)
}

func runRedisParent(dir string) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		fmt.Println("redis-pid=none:", err)
		os.Exit(1)
	}
	rs, err := StartRedisServer(context.Background(), bin, 0, dir)
	if err != nil {
		fmt.Println("redis-pid=none:", err)
		os.Exit(1)
	}
	fmt.Printf("redis-pid=%d\n", rs.PID())
	select {} // until killed
}

// processRunning is false once pid is gone or a zombie (a container's
// pid 1 may never reap it).
func processRunning(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// state is the field after the ")" that ends the command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}
