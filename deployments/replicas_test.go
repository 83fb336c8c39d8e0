package deployments

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/connect"
)

// haProfile is the compose profile that replicates everything.
const haProfile = "ha"

// sentinelServices are compose's sentinels in the ha profile.
var sentinelServices = []string{"redis-sentinel-1", "redis-sentinel-2", "redis-sentinel-3"}

// TestManifestsReplicas: every role runs at least two pods with a
// PodDisruptionBudget that lets a drain take one and keeps one, spread over
// nodes; the role that must be one (deployedService.singleton) is one pod,
// replaced with Recreate, with a PDB that does not block drains.
func TestManifestsReplicas(t *testing.T) {
	objs := loadManifests(t)
	for _, svc := range deployedServices() {
		name := "kiln-" + svc.name
		d := findObject(t, objs, "Deployment", name)
		require.NotNil(t, d.Spec.Replicas, "%s: replicas spelled out", name)
		replicas := *d.Spec.Replicas
		pdb := findObject(t, objs, "PodDisruptionBudget", name)
		require.Equal(t, name, pdb.Spec.Selector.MatchLabels["app.kubernetes.io/name"], "%s: the PDB selects the pods", name)

		if svc.singleton != "" {
			require.Equal(t, 1, replicas, "%s must run as one pod: %s", name, svc.singleton)
			require.Equal(t, "Recreate", d.Spec.Strategy.Type, "%s: two must never overlap during a rollout", name)
			// minAvailable: 1 on one pod would block every node drain.
			require.Nil(t, pdb.Spec.MinAvailable, "%s: a PDB of one pod must not require it", name)
			require.Equal(t, 1, pdb.Spec.MaxUnavailable, "%s: maxUnavailable: 1", name)
			continue
		}
		require.GreaterOrEqual(t, replicas, 2, "%s: at least two pods", name)
		switch {
		case pdb.Spec.MinAvailable != nil:
			require.Nil(t, pdb.Spec.MaxUnavailable, "%s: PDB sets one of minAvailable, maxUnavailable", name)
			min, ok := pdb.Spec.MinAvailable.(int)
			require.True(t, ok, "%s: minAvailable is a number of pods, got %v", name, pdb.Spec.MinAvailable)
			require.GreaterOrEqual(t, min, 1, "%s: the PDB keeps a pod", name)
			require.Less(t, min, replicas, "%s: the PDB lets a drain take a pod", name)
		default:
			max, ok := pdb.Spec.MaxUnavailable.(int)
			require.True(t, ok, "%s: PDB: minAvailable or maxUnavailable as a number of pods", name)
			require.GreaterOrEqual(t, max, 1, "%s: the PDB lets a drain take a pod", name)
			require.Less(t, max, replicas, "%s: the PDB keeps a pod", name)
		}
		spread := d.Spec.Template.Spec.TopologySpreadConstraints
		require.NotEmpty(t, spread, "%s: pods spread over nodes", name)
		require.Equal(t, "kubernetes.io/hostname", spread[0].TopologyKey, name)
		require.Equal(t, 1, spread[0].MaxSkew, name)
		require.Equal(t, name, spread[0].LabelSelector.MatchLabels["app.kubernetes.io/name"], "%s: spreads its own pods", name)
	}
}

// composeInstances is how many processes of role compose runs with the
// given profiles on: services running `serve <role>` whose profile is on,
// times their deploy.replicas.
func composeInstances(c composeFile, role string, profiles ...string) (n int, services []string) {
	for name, s := range c.Services {
		if !reflect.DeepEqual(s.Command, []string{"serve", role}) {
			continue
		}
		if len(s.Profiles) > 0 && !slices.ContainsFunc(s.Profiles, func(p string) bool { return slices.Contains(profiles, p) }) {
			continue
		}
		n += max(s.Deploy.Replicas, 1)
		services = append(services, name)
	}
	slices.Sort(services)
	return n, services
}

// TestComposeHAProfile checks the ha profile: a Redis Sentinel group that
// REDIS_URL (deployments/ha.env) names, and two processes of every role but
// a singleton (none today: the notifier's second is a hot standby), each
// extra one a copy of the first; the default profile
// still runs one of each (two projectors).
func TestComposeHAProfile(t *testing.T) {
	c := loadCompose(t)
	env := readEnvFile(t, "ha.env")
	profiles := strings.Split(env["COMPOSE_PROFILES"], ",")
	require.Contains(t, profiles, haProfile)
	require.Contains(t, profiles, "cluster", "ha.env runs the NATS cluster too")
	cluster := readEnvFile(t, "cluster.env")
	for _, k := range []string{"NATS_CONFIG", "NATS_URL", "STREAM_REPLICAS"} {
		require.Equal(t, cluster[k], env[k], "ha.env: %s as in cluster.env", k)
	}

	// Sentinel: the replica follows redis; three sentinels run one
	// config, mounted, whose master is the one REDIS_URL names.
	replica := c.Services["redis-replica"]
	require.Equal(t, []string{haProfile}, replica.Profiles)
	require.Contains(t, strings.Join(replica.Command, " "), "--replicaof redis 6379")
	require.NotNil(t, replica.Healthcheck)
	master, host, port, quorum := sentinelMonitor(t, filepath.Join("redis", "sentinel.conf"))
	require.Equal(t, "redis", host, "the sentinels watch compose's redis")
	require.Equal(t, 6379, port)
	require.Greater(t, quorum, len(sentinelServices)/2, "quorum: a majority of the sentinels")
	require.LessOrEqual(t, quorum, len(sentinelServices)-1, "quorum: reachable with one sentinel lost")
	for _, n := range sentinelServices {
		s, ok := c.Services[n]
		require.True(t, ok, "docker-compose.yml has no %s", n)
		require.Equal(t, []string{haProfile}, s.Profiles, n)
		cmd := strings.Join(s.Command, " ")
		require.Contains(t, cmd, "cp /etc/redis/sentinel.conf /data/sentinel.conf", n)
		require.Contains(t, cmd, "redis-server /data/sentinel.conf --sentinel", n)
		require.Contains(t, s.Volumes, "./deployments/redis:/etc/redis:ro", n)
		require.NotNil(t, s.Healthcheck, n)
		require.Contains(t, strings.Join(s.Healthcheck.Test, " "), "sentinel ckquorum "+master, n)
	}
	target, err := connect.ParseRedisURL(env["REDIS_URL"])
	require.NoError(t, err, "ha.env REDIS_URL")
	require.NotNil(t, target.Failover, "ha.env: REDIS_URL names the sentinels (redis-sentinel://)")
	require.Equal(t, master, target.Failover.MasterName)
	var addrs []string
	for _, n := range sentinelServices {
		addrs = append(addrs, n+":26379")
	}
	require.Equal(t, addrs, target.Failover.SentinelAddrs, "ha.env: every sentinel")

	// Every role that reads REDIS_URL takes it from the env file and waits
	// for the sentinels when they run.
	for name, s := range c.Services {
		if _, ok := s.Environment["REDIS_URL"]; !ok {
			continue
		}
		require.Equal(t, "${REDIS_URL:-redis://redis:6379/0}", s.Environment["REDIS_URL"], name)
		for _, n := range sentinelServices {
			require.Contains(t, s.DependsOn, n, "%s waits for %s in the ha profile", name, n)
		}
	}

	for _, svc := range deployedServices() {
		def, _ := composeInstances(c, svc.name)
		ha, services := composeInstances(c, svc.name, "cluster", haProfile)
		if svc.singleton != "" {
			require.Equal(t, 1, ha, "%s runs as one process in the ha profile too: %s", svc.name, svc.singleton)
			require.Equal(t, []string{svc.name}, services)
			continue
		}
		require.GreaterOrEqual(t, def, 1, svc.name)
		require.GreaterOrEqual(t, ha, 2, "%s: two processes in the ha profile (%v)", svc.name, services)
		first := c.Services[svc.name]
		for _, n := range services {
			if n == svc.name {
				continue
			}
			s := c.Services[n]
			require.Equal(t, []string{haProfile}, s.Profiles, n)
			require.Equal(t, first.Image, s.Image, n)
			require.Equal(t, first.Environment, s.Environment, "%s: the settings of %s", n, svc.name)
			require.Equal(t, first.Healthcheck, s.Healthcheck, n)
			require.Equal(t, first.DependsOn, s.DependsOn, n)
			require.Equal(t, first.Volumes, s.Volumes, n)
			// Found by the first's name: Prometheus (dns_sd_configs) scrapes both.
			require.Contains(t, s.Networks["default"].Aliases, svc.name, "%s answers to %s inside the network", n, svc.name)
			require.Len(t, s.Ports, len(first.Ports), "%s publishes what %s does", n, svc.name)
		}
	}

	// No two services publish one host port, whatever the profiles.
	seen := map[string]string{}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			host, _, ok := strings.Cut(p, ":")
			require.True(t, ok, "%s: port %q as HOST:CONTAINER", name, p)
			require.NotContains(t, seen, host, "%s and %s both publish host port %s", name, seen[host], host)
			seen[host] = name
		}
	}

	// .env.example says how to turn it on.
	b, err := os.ReadFile(filepath.Join("..", ".env.example"))
	require.NoError(t, err)
	require.Contains(t, string(b), "deployments/ha.env")
}

// sentinelMonitor reads the `sentinel monitor <master> <host> <port>
// <quorum>` line of a sentinel config file.
func sentinelMonitor(t *testing.T, path string) (master, host string, port, quorum int) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	found := false
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 6 || fields[0] != "sentinel" || fields[1] != "monitor" {
			continue
		}
		require.False(t, found, "%s: one monitored master", path)
		found = true
		master, host = fields[2], fields[3]
		port, err = strconv.Atoi(fields[4])
		require.NoError(t, err, path)
		quorum, err = strconv.Atoi(fields[5])
		require.NoError(t, err, path)
	}
	require.NoError(t, sc.Err())
	require.True(t, found, "%s: no sentinel monitor line", path)
	return master, host, port, quorum
}
