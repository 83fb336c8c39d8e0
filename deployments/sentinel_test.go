package deployments

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/testsupport"
)

// redisProc is a redis-server (or sentinel) process the test started.
type redisProc struct {
	addr   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

func startRedisProc(t *testing.T, dir string, args ...string) *redisProc {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skipf("redis-server not on PATH (make test installs it): %v", err)
	}
	port := testsupport.FreePort(t)
	p := &redisProc{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), log: filepath.Join(dir, "log"), exited: make(chan struct{})}
	out, err := os.Create(p.log)
	require.NoError(t, err)
	p.cmd = exec.Command(bin, append(args, "--port", strconv.Itoa(port), "--bind", "127.0.0.1")...)
	p.cmd.Dir, p.cmd.Stdout, p.cmd.Stderr = dir, out, out
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); _ = out.Close(); close(p.exited) }()
	t.Cleanup(p.kill)
	require.Eventually(t, func() bool {
		c := redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1})
		defer c.Close()
		return c.Ping(context.Background()).Err() == nil
	}, 3*time.Minute, 20*time.Millisecond, "redis-server on %s did not answer: %s", p.addr, p.output())
	return p
}

func (p *redisProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

func (p *redisProc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// TestSentinelConfigFailsOver runs compose's Sentinel group on loopback
// from deployments/redis/sentinel.conf as the containers do (only the
// addresses and the directory changed), connects as the roles do — through
// ha.env's REDIS_URL parsed by connect — and kills the master: the
// sentinels promote the replica within the file's timeouts and the client
// writes again, the replicated key still there.
func TestSentinelConfigFailsOver(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the config's 5 s down-after")
	}
	conf, err := os.ReadFile(filepath.Join("redis", "sentinel.conf"))
	require.NoError(t, err)
	master := startRedisProc(t, t.TempDir(), "--save", "", "--appendonly", "no")
	replica := startRedisProc(t, t.TempDir(), "--save", "", "--appendonly", "no", "--replicaof", "127.0.0.1", portOf(master.addr))

	name, _, _, _ := sentinelMonitor(t, filepath.Join("redis", "sentinel.conf"))
	url := readEnvFile(t, "ha.env")["REDIS_URL"]
	var sentinels []*redisProc
	for i := range sentinelServices {
		dir := t.TempDir()
		body := strings.Replace(string(conf), "dir /data\n", "dir "+dir+"\n", 1)
		monitor := fmt.Sprintf("sentinel monitor %s redis 6379", name)
		require.Contains(t, body, monitor)
		body = strings.Replace(body, monitor, fmt.Sprintf("sentinel monitor %s 127.0.0.1 %s", name, portOf(master.addr)), 1)
		path := filepath.Join(dir, "sentinel.conf")
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
		s := startRedisProc(t, dir, path, "--sentinel")
		sentinels = append(sentinels, s)
		url = strings.Replace(url, sentinelServices[i]+":26379", s.addr, 1)
	}
	ctx := context.Background()
	// sentinelOK: every sentinel names want as the master, sees a quorum
	// and (before the failover) the replica.
	sentinelOK := func(want string, replicaUp bool) func() bool {
		return func() bool {
			for _, s := range sentinels {
				c := redis.NewSentinelClient(&redis.Options{Addr: s.addr})
				addr, err := c.GetMasterAddrByName(ctx, name).Result()
				quorum := c.CkQuorum(ctx, name).Err()
				replicas, rerr := c.Replicas(ctx, name).Result()
				_ = c.Close()
				if err != nil || net.JoinHostPort(addr[0], addr[1]) != want || quorum != nil || rerr != nil || (replicaUp && len(replicas) != 1) {
					return false
				}
			}
			return true
		}
	}
	require.Eventually(t, sentinelOK(master.addr, true), 3*time.Minute, 100*time.Millisecond,
		"the sentinels agree on the master and see its replica and each other: %s", sentinels[0].output())

	target, err := connect.ParseRedisURL(url)
	require.NoError(t, err)
	require.NotNil(t, target.Failover)
	client := target.Client()
	defer client.Close()
	require.NoError(t, client.Set(ctx, "kiln:test", "before", 0).Err())
	// Acknowledged by the replica too: what a failover keeps.
	require.NoError(t, client.Do(ctx, "WAIT", 1, 5000).Err())

	killed := time.Now()
	master.kill()
	require.Eventually(t, sentinelOK(replica.addr, false), 3*time.Minute, 100*time.Millisecond,
		"the replica promoted: %s", sentinels[0].output())
	require.Eventually(t, func() bool {
		return client.Set(ctx, "kiln:test-after", "after", 0).Err() == nil
	}, 3*time.Minute, 100*time.Millisecond, "the client writes to the new master")
	v, err := client.Get(ctx, "kiln:test").Result()
	require.NoError(t, err)
	require.Equal(t, "before", v)
	t.Logf("master killed → the client writes to the promoted replica after %s", time.Since(killed).Round(100*time.Millisecond))
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}
