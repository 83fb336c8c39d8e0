package deployments

import (
	"net/url"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"
)

// loadNATSConfig parses a config file the way `nats-server --config` does.
func loadNATSConfig(t *testing.T, path string) *server.Options {
	t.Helper()
	opts, err := server.ProcessConfigFile(path)
	require.NoError(t, err, "nats-server --config %s", path)
	return opts
}

func TestNATSConfigSingle(t *testing.T) {
	opts := loadNATSConfig(t, filepath.Join("nats", "nats.conf"))
	require.Equal(t, "nats", opts.ServerName)
	require.Equal(t, 4222, opts.Port)
	require.Equal(t, 8222, opts.HTTPPort, "monitoring port (compose health check)")
	require.True(t, opts.JetStream, "JetStream enabled")
	require.Equal(t, "/data", opts.StoreDir, "file store on the compose volume")
	require.Positive(t, opts.JetStreamMaxStore)
	require.Zero(t, opts.Cluster.Port, "a single server has no cluster listener")
	require.Empty(t, opts.Routes)
}

func TestNATSConfigCluster(t *testing.T) {
	names := map[string]bool{}
	for _, node := range []string{"nats-1", "nats-2", "nats-3"} {
		t.Run(node, func(t *testing.T) {
			opts := loadNATSConfig(t, filepath.Join("nats", "cluster", node+".conf"))
			require.Equal(t, node, opts.ServerName)
			names[opts.ServerName] = true
			require.Equal(t, 4222, opts.Port)
			require.Equal(t, 8222, opts.HTTPPort)
			require.True(t, opts.JetStream)
			require.Equal(t, "/data", opts.StoreDir)
			require.Equal(t, "kiln", opts.Cluster.Name)
			require.Equal(t, 6222, opts.Cluster.Port)
			// Routes to every node: the compose service names of the three nodes.
			require.ElementsMatch(t, []string{"nats:6222", "nats-2:6222", "nats-3:6222"}, routeHosts(opts.Routes))
		})
	}
	require.Len(t, names, 3, "server names must be unique in a cluster")
}

func routeHosts(routes []*url.URL) []string {
	hosts := make([]string, 0, len(routes))
	for _, r := range routes {
		hosts = append(hosts, r.Host)
	}
	slices.Sort(hosts)
	return hosts
}
