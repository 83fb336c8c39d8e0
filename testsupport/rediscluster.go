package testsupport

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// groupReadyTimeout bounds how long a Redis Cluster or Sentinel group may
// take to be ready: generous, since other tests share the machine.
const groupReadyTimeout = 3 * time.Minute

// redisNode is one redis-server process of a Cluster or Sentinel group.
type redisNode struct {
	addr   string
	cmd    *exec.Cmd
	output *LogBuffer
	exited chan struct{}
	once   sync.Once
}

// kill stops the process (SIGKILL: no shutdown, no last save) and waits
// for it.
func (n *redisNode) kill() {
	n.once.Do(func() {
		_ = n.cmd.Process.Kill()
		<-n.exited
	})
}

// startNode starts redis-server with args (a config file first, if any)
// on a free port (and a second free port for the cluster bus when cluster
// is set), retrying on a port taken meanwhile, and waits until it answers.
func startNode(t testing.TB, cluster bool, conf func(port int) []string) *redisNode {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testsupport: redis-server not found on PATH (%v)", err)
	}
	var lastErr error
	for range redisStartAttempts {
		port := FreePort(t)
		args := conf(port)
		args = append(args, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if cluster {
			args = append(args, "--cluster-port", strconv.Itoa(FreePort(t)))
		}
		n := &redisNode{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), output: &LogBuffer{}, exited: make(chan struct{})}
		n.cmd = exec.Command(bin, args...)
		n.cmd.Stdout, n.cmd.Stderr = n.output, n.output
		if err := n.cmd.Start(); err != nil {
			t.Fatalf("testsupport: starting %s: %v", bin, err)
		}
		go func() {
			defer close(n.exited)
			_ = n.cmd.Wait()
		}()
		if lastErr = n.waitUp(); lastErr == nil {
			t.Cleanup(n.kill)
			return n
		}
		n.kill()
	}
	t.Fatalf("testsupport: starting redis-server: %v", lastErr)
	return nil
}

// waitUp waits until the process answers INFO with its own pid.
func (n *redisNode) waitUp() error {
	c := redis.NewClient(&redis.Options{Addr: n.addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(redisStartTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		pid, err := redisPID(ctx, c)
		cancel()
		if err == nil && pid == n.cmd.Process.Pid {
			return nil
		}
		select {
		case <-n.exited:
			return fmt.Errorf("redis-server on %s exited early; output:\n%s", n.addr, n.output)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s did not answer within %s (%v); output:\n%s", n.addr, redisStartTimeout, err, n.output)
		}
	}
}

// waitFor polls cond until it returns nil, failing the test with its last
// error after groupReadyTimeout.
func waitFor(t testing.TB, what string, cond func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(groupReadyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testsupport: %s: not within %s: %v", what, groupReadyTimeout, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// RedisCluster is a real Redis Cluster on 127.0.0.1: three masters, each
// with one replica when asked, persistence off. Its processes are killed
// when the test ends.
type RedisCluster struct {
	nodes []*redisNode
}

// StartRedisCluster starts 3 masters (and 3 replicas if replicas) with
// cluster-enabled redis-server processes, joins them with
// `redis-cli --cluster create`, and waits until every node reports
// cluster_state:ok and sees every slot served.
func StartRedisCluster(t testing.TB, replicas bool) *RedisCluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("testsupport: redis-cli not found on PATH (%v)", err)
	}
	count := 3
	if replicas {
		count = 6
	}
	rc := &RedisCluster{}
	for range count {
		dir := t.TempDir()
		rc.nodes = append(rc.nodes, startNode(t, true, func(int) []string {
			return []string{"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-node-timeout", "2000", "--dir", dir}
		}))
	}
	args := []string{"--cluster", "create"}
	args = append(args, rc.Addrs()...)
	args = append(args, "--cluster-replicas", map[bool]string{true: "1", false: "0"}[replicas], "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("testsupport: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	waitFor(t, "Redis Cluster ready", func(ctx context.Context) error {
		for _, n := range rc.nodes {
			c := redis.NewClient(&redis.Options{Addr: n.addr})
			info, err := c.ClusterInfo(ctx).Result()
			_ = c.Close()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") ||
				!strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(count)) {
				return fmt.Errorf("%s: %s", n.addr, info)
			}
		}
		return nil
	})
	return rc
}

// Addrs are the nodes' host:port, masters and replicas alike.
func (rc *RedisCluster) Addrs() []string {
	out := make([]string, len(rc.nodes))
	for i, n := range rc.nodes {
		out[i] = n.addr
	}
	return out
}

// URL is the cluster's REDIS_URL: redis-cluster://host:port,host:port,...
func (rc *RedisCluster) URL() string {
	return "redis-cluster://" + strings.Join(rc.Addrs(), ",")
}

// Client returns a go-redis cluster client, closed when the test ends.
func (rc *RedisCluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Kill kills the node at addr (SIGKILL).
func (rc *RedisCluster) Kill(addr string) {
	for _, n := range rc.nodes {
		if n.addr == addr {
			n.kill()
		}
	}
}

// RedisSentinel is a real Sentinel group on 127.0.0.1: one master, one
// replica and three sentinels monitoring the master as "kiln". Its
// processes are killed when the test ends.
type RedisSentinel struct {
	Master, Replica *redisNode
	sentinels       []*redisNode
}

// SentinelMasterName is the name the sentinels know the master by.
const SentinelMasterName = "kiln"

// StartRedisSentinel starts the group and waits until every sentinel
// knows the master, its replica and the other sentinels (CKQUORUM says
// the group can authorize a failover).
func StartRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	rs := &RedisSentinel{}
	rs.Master = startNode(t, false, func(int) []string { return []string{"--dir", t.TempDir()} })
	host, port, _ := net.SplitHostPort(rs.Master.addr)
	rs.Replica = startNode(t, false, func(int) []string { return []string{"--dir", t.TempDir(), "--replicaof", host, port} })
	for range 3 {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		body := fmt.Sprintf("dir %s\nsentinel monitor %s %s %s 2\nsentinel down-after-milliseconds %[2]s 1000\nsentinel failover-timeout %[2]s 10000\n",
			dir, SentinelMasterName, host, port)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatalf("testsupport: writing %s: %v", conf, err)
		}
		rs.sentinels = append(rs.sentinels, startNode(t, false, func(int) []string { return []string{conf, "--sentinel"} }))
	}
	waitFor(t, "Sentinel group ready", func(ctx context.Context) error {
		for _, s := range rs.sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: s.addr})
			err := c.CkQuorum(ctx, SentinelMasterName).Err()
			var replicas []map[string]string
			if err == nil {
				replicas, err = c.Replicas(ctx, SentinelMasterName).Result()
			}
			_ = c.Close()
			if err != nil {
				return fmt.Errorf("sentinel %s: %w", s.addr, err)
			}
			if len(replicas) != 1 || replicas[0]["flags"] != "slave" {
				return fmt.Errorf("sentinel %s does not see the replica up: %v", s.addr, replicas)
			}
		}
		return nil
	})
	return rs
}

// SentinelAddrs are the sentinels' host:port.
func (rs *RedisSentinel) SentinelAddrs() []string {
	out := make([]string, len(rs.sentinels))
	for i, n := range rs.sentinels {
		out[i] = n.addr
	}
	return out
}

// URL is the group's REDIS_URL: redis-sentinel://s1,s2,s3/kiln.
func (rs *RedisSentinel) URL() string {
	return "redis-sentinel://" + strings.Join(rs.SentinelAddrs(), ",") + "/" + SentinelMasterName
}

// Client returns a go-redis failover client, closed when the test ends.
func (rs *RedisSentinel) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: SentinelMasterName, SentinelAddrs: rs.SentinelAddrs()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// KillMaster kills the master the group started with (SIGKILL).
func (rs *RedisSentinel) KillMaster() { rs.Master.kill() }
