package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a redis-server child process. It keeps no persistence:
// Kiln's Redis state (counters, recent-events cache) is rebuilt from the
// stream whenever Redis starts empty, while a restored snapshot older than
// the projectors' positions would silently lack events.
type RedisServer struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

// StartRedisServer runs bin (a redis-server) on 127.0.0.1:port (0 picks a
// free one) with its working directory dir/redis, and waits until it answers.
func StartRedisServer(ctx context.Context, bin string, port int, dir string) (*RedisServer, error) {
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("redis-server: free port: %w", err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	wd := filepath.Join(dir, "redis")
	if err := os.MkdirAll(wd, 0o750); err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", wd,
		"--save", "", "--appendonly", "no", "--logfile", filepath.Join(wd, "redis.log"), "--daemonize", "no")
	cmd.Dir = wd
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	r := &RedisServer{cmd: cmd, addr: addr, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := rdb.Ping(pctx).Err()
		cancel()
		if err == nil {
			return r, nil
		}
		select {
		case <-r.done:
			log, _ := os.ReadFile(filepath.Join(wd, "redis.log"))
			return nil, fmt.Errorf("%s exited at start: %s", bin, lastLine(string(log)))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.Shutdown()
			return nil, fmt.Errorf("%s did not answer on %s: %w", bin, addr, errors.Join(err, ctx.Err()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// URL is the redis:// URL of the server.
func (r *RedisServer) URL() string { return "redis://" + r.addr }

// Shutdown stops the server (SIGTERM, then SIGKILL after 5 s).
func (r *RedisServer) Shutdown() {
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}
