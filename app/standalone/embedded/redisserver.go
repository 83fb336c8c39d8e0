package embedded

import (
	"bytes"
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

// redisStartTimeout bounds how long StartRedisServer waits for PING.
const redisStartTimeout = 30 * time.Second

// RedisServer is a redis-server child process. It keeps no persistence:
// Kiln's Redis state (counters, recent-events cache) is rebuilt from the
// stream whenever Redis starts empty, while a restored snapshot older than
// the projectors' positions would silently lack events.
type RedisServer struct {
	cmd     *exec.Cmd
	addr    string
	version string
	done    chan struct{}
}

// StartRedisServer runs bin (a redis-server) on 127.0.0.1:port (0 picks a
// free one) with its working directory, log file (redis.log) and output
// (redis.out: what it writes before its log file is open) in dir/redis,
// and waits until it answers. dir may be relative (the default ./data): it
// is made absolute first, since redis-server resolves --dir and --logfile
// from its own working directory. When the server does not start, the
// error says why: the end of its output and of its log file.
func StartRedisServer(ctx context.Context, bin string, port int, dir string) (*RedisServer, error) {
	wd, err := filepath.Abs(filepath.Join(dir, "redis"))
	if err != nil {
		return nil, fmt.Errorf("redis-server: data dir: %w", err)
	}
	if err := os.MkdirAll(wd, 0o750); err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("redis-server: free port: %w", err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logFile := filepath.Join(wd, "redis.log")
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", wd,
		"--save", "", "--appendonly", "no", "--logfile", logFile, "--daemonize", "no")
	cmd.Dir = wd
	cmd.SysProcAttr = childProcAttr()
	outFile := filepath.Join(wd, "redis.out")
	out, err := os.Create(outFile)
	if err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Start()
	_ = out.Close() // the child writes to its own copy
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	r := &RedisServer{cmd: cmd, addr: addr, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()
	why := func() string { return failureReason(outFile, logFile) }

	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(redisStartTimeout)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		info, err := rdb.Info(pctx, "server").Result()
		cancel()
		if err == nil {
			// Another server may have taken the port between the free-port
			// probe and the child's bind.
			if pid := infoField(info, "process_id"); pid != strconv.Itoa(cmd.Process.Pid) {
				r.Shutdown()
				return nil, fmt.Errorf("%s: %s is answered by another server (process %s): %s", bin, addr, pid, why())
			}
			r.version = infoField(info, "redis_version")
			return r, nil
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("%s exited at start (%s): %s", bin, cmd.ProcessState, why())
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.Shutdown()
			return nil, fmt.Errorf("%s did not answer on %s: %w: %s", bin, addr, errors.Join(err, ctx.Err()), why())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// failureReason is what a redis-server that did not start said: the last
// lines of each of files (its output, then its log file).
func failureReason(files ...string) string {
	var parts []string
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && len(bytes.TrimSpace(b)) > 0 {
			parts = append(parts, f+": "+lastLines(string(b), 5))
		}
	}
	if len(parts) == 0 {
		return "nothing in " + strings.Join(files, " or ")
	}
	return strings.Join(parts, "; ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
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

// URL is the redis:// URL of the server.
func (r *RedisServer) URL() string { return "redis://" + r.addr }

// Version is the server's redis_version.
func (r *RedisServer) Version() string { return r.version }

// PID is the child's process id.
func (r *RedisServer) PID() int { return r.cmd.Process.Pid }

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
