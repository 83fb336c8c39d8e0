package testsupport

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisStartTimeout bounds how long StartRedis waits for PING to answer.
const redisStartTimeout = 10 * time.Second

// redisStartAttempts is how often StartRedis retries with a new port when
// redis-server exits early (typically: the free port was taken meanwhile).
const redisStartAttempts = 3

// Redis is a real redis-server process on 127.0.0.1 with persistence
// disabled. It is killed when the test that started it finishes.
type Redis struct {
	addr string
}

// StartRedis starts redis-server (found on PATH) on a free port and waits
// until it answers. It fails the test if redis-server is not installed.
func StartRedis(t testing.TB) *Redis {
	t.Helper()

	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testsupport: redis-server not found on PATH (%v); install it, e.g. `apt-get install redis-server`", err)
	}

	var lastErr error
	for range redisStartAttempts {
		addr, err := startRedisOnce(t, bin)
		if err == nil {
			return &Redis{addr: addr}
		}
		lastErr = err
	}
	t.Fatalf("testsupport: starting redis-server: %v", lastErr)
	return nil
}

// startRedisOnce starts one redis-server on a free port and waits until it
// answers, checking that the answer comes from the process it started.
// On error the process has already been stopped.
func startRedisOnce(t testing.TB, bin string) (string, error) {
	t.Helper()

	port := FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	output := &LogBuffer{}
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", t.TempDir(),
	)
	cmd.Stdout = output
	cmd.Stderr = output
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		_ = cmd.Wait()
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer client.Close()
	deadline := time.Now().Add(redisStartTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		pid, err := redisPID(ctx, client)
		cancel()
		// A different pid means another test's server grabbed the port
		// first; ours will exit with "address in use" and we retry.
		if err == nil && pid == cmd.Process.Pid {
			t.Cleanup(stop)
			return addr, nil
		}
		select {
		case <-exited:
			return "", fmt.Errorf("redis-server on %s exited early (%v); output:\n%s", addr, cmd.ProcessState, output)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("redis-server on %s did not answer INFO within %s (last error: %v); output:\n%s",
				addr, redisStartTimeout, err, output)
		}
	}
}

// redisPID returns the process_id reported by INFO server.
func redisPID(ctx context.Context, c *redis.Client) (int, error) {
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, fmt.Errorf("INFO server has no process_id")
}

// Addr returns host:port, e.g. 127.0.0.1:6379.
func (r *Redis) Addr() string {
	return r.addr
}

// URL returns a redis:// URL for the server, e.g. redis://127.0.0.1:6379/0.
func (r *Redis) URL() string {
	return "redis://" + r.addr + "/0"
}

// Client returns a go-redis client for database 0; it is closed when the
// test finishes.
func (r *Redis) Client(t testing.TB) *redis.Client {
	t.Helper()

	c := redis.NewClient(&redis.Options{Addr: r.addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
