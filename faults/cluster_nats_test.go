package faults

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/testsupport"
)

// natsCluster is three nats-server processes (the module's own
// nats-server, built once like kiln) forming one JetStream cluster on
// 127.0.0.1, each on fixed ports and a store of its own so that a node
// killed with SIGKILL starts again as the same member.
type natsCluster struct {
	t     *testing.T
	ports []int
	nodes []*proc
}

// The cluster's nodes run the nats-server of the module graph, built like
// kiln (without -race) when a test first needs it.
func init() {
	binaries["nats-server"] = struct {
		pkg, file string
		args      []string
		rev       string
	}{"github.com/nats-io/nats-server/v2", "nats-server", nil, ""}
}

func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	const size = 3
	routes := make([]string, size)
	routePorts := make([]int, size)
	for i := range size {
		routePorts[i] = testsupport.FreePort(t)
		routes[i] = "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(routePorts[i]))
	}
	c := &natsCluster{t: t}
	path := bin(t, "nats-server")
	for i := range size {
		port := testsupport.FreePort(t)
		c.ports = append(c.ports, port)
		// --no_advertise: a client knows only the URLs it was given, so a
		// projector behind proxies cannot reach a node around them.
		c.nodes = append(c.nodes, newCommand(t, fmt.Sprintf("nats-%d", i+1), path, []string{
			"-n", fmt.Sprintf("nats-%d", i+1), "-a", "127.0.0.1", "-p", strconv.Itoa(port),
			"-js", "-sd", t.TempDir(), "--cluster_name", "kiln",
			"--cluster", routes[i], "--routes", strings.Join(routes, ","), "--no_advertise=true",
		}, nil))
	}
	for i := range size {
		c.nodes[i].start()
	}
	c.waitHealthy()
	return c
}

// start runs node i again on its ports and store.
func (c *natsCluster) start(i int) { c.nodes[i].start() }

// kill kills node i with SIGKILL (its store stays).
func (c *natsCluster) kill(i int) { c.nodes[i].kill() }

// addrs are the nodes' client host:port.
func (c *natsCluster) addrs() []string {
	out := make([]string, len(c.ports))
	for i, p := range c.ports {
		out[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return out
}

// urls is NATS_URL for the whole cluster.
func urlsOf(addrs []string) string {
	u := make([]string, len(addrs))
	for i, a := range addrs {
		u[i] = "nats://" + a
	}
	return strings.Join(u, ",")
}

// waitHealthy waits until JetStream has a meta leader, and, once the
// stream exists, until EVENTS has a leader and every replica is current.
func (c *natsCluster) waitHealthy() {
	c.t.Helper()
	nc, err := nats.Connect(urlsOf(c.addrs()), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.RetryOnFailedConnect(true))
	require.NoError(c.t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(c.t, err)
	var why string
	require.Eventually(c.t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := js.AccountInfo(ctx); err != nil {
			why = "account info: " + err.Error()
			return false
		}
		s, err := js.Stream(ctx, "EVENTS")
		if err != nil {
			why = "stream EVENTS: " + err.Error()
			return err == jetstream.ErrStreamNotFound // not created yet: ingest creates it
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
			why = fmt.Sprintf("stream EVENTS has no leader (%v)", err)
			return false
		}
		if info.Config.Replicas != 3 || len(info.Cluster.Replicas) != 2 {
			why = fmt.Sprintf("EVENTS at %d replicas, %d followers", info.Config.Replicas, len(info.Cluster.Replicas))
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				why = fmt.Sprintf("replica %s of EVENTS not current", r.Name)
				return false
			}
		}
		return true
	}, 3*time.Minute, 100*time.Millisecond, "NATS cluster never healthy: %s", why)
}
