package faults

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The cluster faults (issue 25 items 2 and 3): each starts a cluster on
// loopback (cluster_harness_test.go), runs the workload over both ingest
// instances, injects one fault and ends with every read model compared
// with the acked ids. make test-cluster (KILN_CLUSTER=1) runs them all;
// make test runs the short subset (shortCluster: one fault, about three
// minutes) unless go test -short.

func onlyCluster(t *testing.T) {
	if os.Getenv("KILN_CLUSTER") == "" {
		t.Skip("make test-cluster (KILN_CLUSTER=1): faults on a 3-node NATS cluster, Redis Cluster / Sentinel and two processes of every role")
	}
}

// shortCluster marks the fault make test runs without KILN_CLUSTER: the
// cluster, its two processes of every role and the check against the
// acked ids all run, on the fault that needs no Redis failover.
func shortCluster(t *testing.T) {
	if testing.Short() && os.Getenv("KILN_CLUSTER") == "" {
		t.Skip("the cluster subset of make test (go test -short skips it; KILN_CLUSTER=1 runs every cluster fault)")
	}
}

// Load of every cluster fault: writers spread over both ingest instances.
const (
	clusterWriters = 4
	clusterPause   = 10 * time.Millisecond
)

// One instance of every role killed with SIGKILL at once, under load: the
// other instance of each carries on (clients retry on the other ingest),
// then the killed ones are started again.
func TestClusterOneInstanceOfEveryRoleKilled(t *testing.T) {
	onlyCluster(t)
	c := startCluster(t, redisCluster)
	probes := probe(t, c.ingestURLs[0], c.slack, c.hooks)
	w := c.startLoad(clusterWriters, clusterPause)
	waitAcked(t, w, 300)
	for _, name := range clusterRoles {
		c.instance(name, 0).running.kill()
	}
	waitAcked(t, w, w.ackedCount()+300) // through the survivors only
	for _, name := range clusterRoles {
		c.restart(c.instance(name, 0))
	}
	restarted := time.Now()
	waitAcked(t, w, w.ackedCount()+200)
	c.check(t, "one instance of every role kill -9", w, probes, restarted)
}

// kill -9 of a Redis Cluster master under load: its replica is promoted
// (cluster-node-timeout 2 s) and the projectors carry on against it.
// Redis replication is asynchronous: a write the master acked and had not
// sent on is lost with it, and the counters come out lower than the acked
// events until the projector detects the loss and rebuilds (issue 25 item
// 1, built separately): this test then fails on the counters' comparison.
func TestClusterRedisMasterKilled(t *testing.T) {
	onlyCluster(t)
	c := startCluster(t, redisCluster)
	probes := probe(t, c.ingestURLs[0], c.slack, c.hooks)
	w := c.startLoad(clusterWriters, clusterPause)
	waitAcked(t, w, 300)
	master := c.redisMaster()
	c.rcluster.Kill(master)
	c.waitRedisClusterOK(master)
	promoted := time.Now()
	waitAcked(t, w, w.ackedCount()+300)
	c.check(t, "Redis Cluster master kill -9", w, probes, promoted)
}

// A NATS node killed with SIGKILL under load and started again later on its store:
// the stream (R3) keeps a quorum, clients move to the other nodes, and
// the restarted node catches up.
func TestClusterNATSNodeKilledAndRestarted(t *testing.T) {
	shortCluster(t)
	c := startCluster(t, redisCluster)
	probes := probe(t, c.ingestURLs[0], c.slack, c.hooks)
	w := c.startLoad(clusterWriters, clusterPause)
	waitAcked(t, w, 300)
	c.nats.kill(0)
	waitAcked(t, w, w.ackedCount()+300) // on two nodes
	c.nats.start(0)
	restarted := time.Now()
	c.nats.waitHealthy()
	waitAcked(t, w, w.ackedCount()+200)
	c.check(t, "NATS node killed and restarted", w, probes, restarted)
}

// One projector cut off NATS (every connection through its proxies
// closed, new ones refused) under load, then let back: the other projector
// takes the work; the cut one's unacked batch comes back after AckWait.
func TestClusterProjectorPartitioned(t *testing.T) {
	onlyCluster(t)
	c := startCluster(t, redisCluster)
	probes := probe(t, c.ingestURLs[0], c.slack, c.hooks)
	w := c.startLoad(clusterWriters, clusterPause)
	waitAcked(t, w, 300)
	for _, p := range c.natsProxy {
		p.Cut()
	}
	cutOff := "http://" + c.instance("projector", 1).admin + "/readyz"
	require.Eventually(t, func() bool { return !answers200(cutOff) }, 2*time.Minute, 100*time.Millisecond,
		"the partitioned projector's /readyz still answers 200: it reaches NATS around the proxies")
	waitAcked(t, w, w.ackedCount()+300)
	for _, p := range c.natsProxy {
		p.Restore()
	}
	restored := time.Now()
	waitReady(t, "http://"+c.instance("projector", 1).admin+"/readyz")
	waitAcked(t, w, w.ackedCount()+200)
	c.check(t, "projector partitioned from NATS", w, probes, restored)
}

// A Sentinel failover under load: the master killed with SIGKILL, the
// sentinels promote the replica and every role's failover client follows.
// The same asynchronous-replication caveat as the Cluster master kill.
func TestClusterSentinelFailover(t *testing.T) {
	onlyCluster(t)
	c := startCluster(t, redisSentinel)
	probes := probe(t, c.ingestURLs[0], c.slack, c.hooks)
	w := c.startLoad(clusterWriters, clusterPause)
	waitAcked(t, w, 300)
	old := c.sentinelMaster()
	c.rsentinel.KillMaster()
	c.waitSentinelPromoted(old)
	promoted := time.Now()
	waitAcked(t, w, w.ackedCount()+300)
	c.check(t, "Sentinel failover", w, probes, promoted)
}

// answers200 reports whether GET url answers 200.
func answers200(url string) bool {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
