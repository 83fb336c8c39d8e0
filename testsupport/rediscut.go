package testsupport

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Redis failover that loses acknowledged writes, made deterministic:
// the replica is cut off its master (CutReplication), the master keeps
// accepting writes, then it is killed and the replica promoted. Every
// step waits for the state it needs (roles, links, promotion) as the
// group reports it, since a loaded machine makes each slow.

// ReplicationCut is a replica cut off its master by CutReplication.
type ReplicationCut struct {
	Master, Replica string // host:port
	cluster         bool
}

// ReplicaClient is a client of the cut replica, reading its own data (in
// a Cluster, READONLY: it answers for its master's slots), closed when
// the test ends.
func (c ReplicationCut) ReplicaClient(t testing.TB) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: c.Replica}
	if c.cluster {
		o.OnConnect = func(ctx context.Context, cn *redis.Conn) error { return cn.ReadOnly(ctx).Err() }
	}
	rdb := redis.NewClient(o)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// Holds reports whether the cut still holds — the master is a master, the
// replica its replica with its link down — and for how long the link has
// been down.
func (c ReplicationCut) Holds(ctx context.Context) (time.Duration, error) {
	m, err := info(ctx, c.Master, "replication")
	if err != nil {
		return 0, err
	}
	if role := infoField(m, "role"); role != "master" {
		return 0, fmt.Errorf("%s is a %s now", c.Master, role)
	}
	r, err := info(ctx, c.Replica, "replication")
	if err != nil {
		return 0, err
	}
	if of := replicaOf(r); of != c.Master {
		return 0, fmt.Errorf("%s is no longer the replica of %s (role %s, of %q)", c.Replica, c.Master, infoField(r, "role"), of)
	}
	if link := infoField(r, "master_link_status"); link != "down" {
		return 0, fmt.Errorf("%s: link to its master %s", c.Replica, link)
	}
	s, err := strconv.Atoi(infoField(r, "master_link_down_since_seconds"))
	if err != nil {
		return 0, fmt.Errorf("%s: master_link_down_since_seconds: %w", c.Replica, err)
	}
	return time.Duration(s) * time.Second, nil
}

// cutReplication makes the replica at addr stop receiving its master's
// writes, deterministically: it is told to authenticate as a user the
// master does not know, and its link is dropped, so its resyncs fail
// while the master keeps accepting writes. Promoted afterwards, it lacks
// every write since: acknowledged writes lost, as asynchronous replication
// loses them.
func cutReplication(t testing.TB, addr string) {
	t.Helper()
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for _, args := range [][]any{
		{"CONFIG", "SET", "masteruser", "kiln-cut", "masterauth", "kiln-cut"},
		{"CLIENT", "KILL", "TYPE", "master"},
	} {
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("testsupport: cut replication to %s: %v", addr, err)
		}
	}
	waitFor(t, "replication cut", func(ctx context.Context) error {
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if infoField(info, "master_link_status") != "down" {
			return fmt.Errorf("%s: link still up", addr)
		}
		return nil
	})
}

// linked returns nil once the node at replica is the replica of master
// with its link up.
func linked(ctx context.Context, replica, master string) error {
	r, err := info(ctx, replica, "replication")
	if err != nil {
		return err
	}
	if of := replicaOf(r); of != master {
		return fmt.Errorf("%s: role %s, replica of %q, not of %s", replica, infoField(r, "role"), of, master)
	}
	if link := infoField(r, "master_link_status"); link != "up" {
		return fmt.Errorf("%s: link to %s %s", replica, master, link)
	}
	return nil
}

// SetDownAfter sets how long the sentinels wait for the master to answer
// before they fail it over (down-after-milliseconds; 1 s as started).
// They promote only a replica whose link to the master went down less
// than about 10 times that before the master did: a test that cuts the
// replica long before killing the master needs more than 1 s, and a
// loaded machine can keep a healthy master from answering for 1 s.
func (rs *RedisSentinel) SetDownAfter(t testing.TB, d time.Duration) {
	t.Helper()
	for _, s := range rs.sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.addr})
		err := c.Set(context.Background(), SentinelMasterName, "down-after-milliseconds", strconv.FormatInt(d.Milliseconds(), 10)).Err()
		_ = c.Close()
		if err != nil {
			t.Fatalf("testsupport: sentinel %s: set down-after: %v", s.addr, err)
		}
	}
}

// masterAddr is the master every sentinel names.
func (rs *RedisSentinel) masterAddr(ctx context.Context) (string, error) {
	var agreed string
	for _, s := range rs.sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.addr})
		hp, err := c.GetMasterAddrByName(ctx, SentinelMasterName).Result()
		_ = c.Close()
		if err != nil {
			return "", fmt.Errorf("sentinel %s: %w", s.addr, err)
		}
		if len(hp) != 2 {
			return "", fmt.Errorf("sentinel %s: master %v", s.addr, hp)
		}
		addr := net.JoinHostPort(hp[0], hp[1])
		if agreed != "" && addr != agreed {
			return "", fmt.Errorf("the sentinels name %s and %s", agreed, addr)
		}
		agreed = addr
	}
	return agreed, nil
}

// CutReplication waits until the sentinels agree on the master and the
// other server is its replica with its link up, then stops that replica
// from receiving the master's writes (see cutReplication).
func (rs *RedisSentinel) CutReplication(t testing.TB) ReplicationCut {
	t.Helper()
	var cut ReplicationCut
	waitFor(t, "a replica linked to the sentinels' master", func(ctx context.Context) error {
		m, err := rs.masterAddr(ctx)
		if err != nil {
			return err
		}
		r := rs.Replica.addr
		if m == r {
			r = rs.Master.addr
		}
		if err := linked(ctx, r, m); err != nil {
			return err
		}
		cut = ReplicationCut{Master: m, Replica: r}
		return nil
	})
	cutReplication(t, cut.Replica)
	return cut
}

// Kill kills the server at addr (SIGKILL).
func (rs *RedisSentinel) Kill(addr string) {
	for _, n := range []*redisNode{rs.Master, rs.Replica} {
		if n.addr == addr {
			n.kill()
		}
	}
}

// WaitPromoted waits until every sentinel names the server at addr the
// master and it says so itself.
func (rs *RedisSentinel) WaitPromoted(t testing.TB, addr string) {
	t.Helper()
	waitFor(t, addr+" promoted by the sentinels", func(ctx context.Context) error {
		m, err := rs.masterAddr(ctx)
		if err != nil {
			return err
		}
		if m != addr {
			return fmt.Errorf("the sentinels name %s", m)
		}
		return isMaster(ctx, addr)
	})
}

// SetNodeTimeout sets every live node's cluster-node-timeout (2 s as
// started): a loaded machine can keep a healthy master from answering for
// 2 s, and the Cluster then fails it over on its own.
func (rc *RedisCluster) SetNodeTimeout(t testing.TB, d time.Duration) {
	t.Helper()
	for _, n := range rc.live() {
		c := redis.NewClient(&redis.Options{Addr: n.addr})
		err := c.ConfigSet(context.Background(), "cluster-node-timeout", strconv.FormatInt(d.Milliseconds(), 10)).Err()
		_ = c.Close()
		if err != nil {
			t.Fatalf("testsupport: %s: set cluster-node-timeout: %v", n.addr, err)
		}
	}
}

// live is the nodes not killed.
func (rc *RedisCluster) live() []*redisNode {
	var out []*redisNode
	for _, n := range rc.nodes {
		select {
		case <-n.exited:
		default:
			out = append(out, n)
		}
	}
	return out
}

// MasterFor waits until every live node names the same master for key's
// slot, and that node says it is a master; it returns its address.
func (rc *RedisCluster) MasterFor(t testing.TB, key string) string {
	t.Helper()
	var master string
	waitFor(t, "the master of "+key, func(ctx context.Context) error {
		var err error
		master, err = rc.masterFor(ctx, key)
		return err
	})
	return master
}

func (rc *RedisCluster) masterFor(ctx context.Context, key string) (string, error) {
	var agreed string
	for _, n := range rc.live() {
		c := redis.NewClient(&redis.Options{Addr: n.addr})
		slot, err := c.ClusterKeySlot(ctx, key).Result()
		var nodes string
		if err == nil {
			nodes, err = c.ClusterNodes(ctx).Result()
		}
		_ = c.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %w", n.addr, err)
		}
		owner := slotOwner(nodes, int(slot))
		if owner == "" || (agreed != "" && owner != agreed) {
			return "", fmt.Errorf("%s names %q the master of slot %d (others %q)", n.addr, owner, slot, agreed)
		}
		agreed = owner
	}
	return agreed, isMaster(ctx, agreed)
}

// slotOwner finds, in CLUSTER NODES output, the address of the master
// serving slot.
func slotOwner(nodes string, slot int) string {
	for line := range strings.Lines(nodes) {
		f := strings.Fields(line)
		if len(f) < 9 || !slices.Contains(strings.Split(f[2], ","), "master") || strings.Contains(f[2], "fail") {
			continue
		}
		for _, r := range f[8:] {
			lo, hi, ok := strings.Cut(r, "-")
			if !ok {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil && a <= slot && slot <= b {
				addr, _, _ := strings.Cut(f[1], "@")
				return addr
			}
		}
	}
	return ""
}

// CutReplication waits until the master at masterAddr has a replica with
// its link up, then stops that replica from receiving its writes (see
// cutReplication). The replica still stands for election however long
// the cut lasts (cluster-replica-validity-factor 0: by default a replica
// cut off for over 10 node timeouts never takes over).
func (rc *RedisCluster) CutReplication(t testing.TB, masterAddr string) ReplicationCut {
	t.Helper()
	var replica string
	waitFor(t, "a replica linked to "+masterAddr, func(ctx context.Context) error {
		if err := isMaster(ctx, masterAddr); err != nil {
			return err
		}
		err := fmt.Errorf("%s has no replica", masterAddr)
		for _, n := range rc.live() {
			i, ierr := info(ctx, n.addr, "replication")
			if ierr != nil {
				err = ierr
				continue
			}
			if replicaOf(i) != masterAddr {
				continue
			}
			if link := infoField(i, "master_link_status"); link != "up" {
				err = fmt.Errorf("%s: link to %s %s", n.addr, masterAddr, link)
				continue
			}
			replica = n.addr
			return nil
		}
		return err
	})
	c := redis.NewClient(&redis.Options{Addr: replica})
	err := c.ConfigSet(context.Background(), "cluster-replica-validity-factor", "0").Err()
	_ = c.Close()
	if err != nil {
		t.Fatalf("testsupport: %s: set cluster-replica-validity-factor: %v", replica, err)
	}
	cutReplication(t, replica)
	return ReplicationCut{Master: masterAddr, Replica: replica, cluster: true}
}

// WaitPromoted waits until the node at addr is a master and every live
// node reports the cluster ok.
func (rc *RedisCluster) WaitPromoted(t testing.TB, addr string) {
	t.Helper()
	waitFor(t, addr+" promoted in the Cluster", func(ctx context.Context) error {
		if err := isMaster(ctx, addr); err != nil {
			return err
		}
		for _, n := range rc.live() {
			c := redis.NewClient(&redis.Options{Addr: n.addr})
			state, err := c.ClusterInfo(ctx).Result()
			_ = c.Close()
			if err != nil {
				return err
			}
			if infoField(state, "cluster_state") != "ok" {
				return fmt.Errorf("%s: cluster_state %s", n.addr, infoField(state, "cluster_state"))
			}
		}
		return nil
	})
}

// isMaster returns nil if the server at addr says it is a master.
func isMaster(ctx context.Context, addr string) error {
	i, err := info(ctx, addr, "replication")
	if err != nil {
		return err
	}
	if role := infoField(i, "role"); role != "master" {
		return fmt.Errorf("%s: role %s", addr, role)
	}
	return nil
}

// info is an INFO section of the server at addr.
func info(ctx context.Context, addr, section string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	s, err := c.Info(ctx, section).Result()
	if err != nil {
		return "", fmt.Errorf("%s: info %s: %w", addr, section, err)
	}
	return s, nil
}

// replicaOf is the master_host:master_port of a replica's INFO
// replication ("" for a master).
func replicaOf(info string) string {
	if infoField(info, "role") != "slave" {
		return ""
	}
	return net.JoinHostPort(infoField(info, "master_host"), infoField(info, "master_port"))
}

// infoField is a field of INFO output ("" if absent).
func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// NewReplicationID gives the Redis behind rdb a new replication ID, as a
// replica promoted by a failover has, keeping its data: it is made a
// replica of a port nobody listens on, then a master again.
func NewReplicationID(t testing.TB, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_ = ln.Close()
	for _, args := range [][]any{{"REPLICAOF", "127.0.0.1", port}, {"REPLICAOF", "NO", "ONE"}} {
		if err := rdb.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
}
