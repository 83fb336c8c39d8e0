package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/kilnhq/kiln/testsupport"
)

// clusterRoles are the roles a production deployment runs, each as
// instancesPerRole `kiln serve <role>` processes.
var clusterRoles = []string{"ingest", "projector", "notifier", "gateway", "webhooks", "realtime"}

const instancesPerRole = 2

// clusterRedis is which Redis deployment the cluster runs on.
type clusterRedis int

const (
	redisCluster  clusterRedis = iota // 3 masters + 3 replicas, REDIS_URL redis-cluster://
	redisSentinel                     // 1 master, 1 replica, 3 sentinels, REDIS_URL redis-sentinel://
)

// cluster is a production-shaped deployment on loopback: a 3-node NATS
// cluster (streams at 3 replicas), Redis Cluster or a Sentinel group, the
// MongoDB store (FerretDB), and two processes of every role. Clients
// spread over the ingest and gateway instances.
type cluster struct {
	t          *testing.T
	nats       *natsCluster
	rcluster   *testsupport.RedisCluster  // redisCluster
	rsentinel  *testsupport.RedisSentinel // redisSentinel
	rdb        redis.UniversalClient      // for checking
	db         *mongo.Database            // for checking
	roles      map[string][]*role
	natsProxy  []*testsupport.Proxy // in front of each NATS node, for projector 2 only
	slack      *receiver
	hooks      *receiver
	ingestURLs []string
	gateways   []string
}

// startCluster starts the deployment and waits until every process is
// ready and an alert and a webhook have come out of it.
func startCluster(t *testing.T, kind clusterRedis) *cluster {
	t.Helper()
	started := time.Now()
	c := &cluster{t: t, roles: map[string][]*role{}}
	c.nats = startNATSCluster(t)
	var redisURL string
	switch kind {
	case redisCluster:
		c.rcluster = testsupport.StartRedisCluster(t, true)
		c.rdb, redisURL = c.rcluster.Client(t), c.rcluster.URL()
	case redisSentinel:
		c.rsentinel = testsupport.StartRedisSentinel(t)
		c.rdb, redisURL = c.rsentinel.Client(t), c.rsentinel.URL()
	}
	m := testsupport.StartMongo(t)
	c.db = m.Database(t)
	c.slack, c.hooks = startSlackReceiver(t), startHookReceiver(t)
	for _, addr := range c.nats.addrs() {
		c.natsProxy = append(c.natsProxy, testsupport.StartProxy(t, addr))
	}
	var proxied []string
	for _, p := range c.natsProxy {
		proxied = append(proxied, p.Addr())
	}

	stores := map[string]string{"NATS_URL": urlsOf(c.nats.addrs()), "STREAM_REPLICAS": "3",
		"MONGO_URI": m.URI(), "MONGO_DATABASE": c.db.Name(), "REDIS_URL": redisURL, "LOG_LEVEL": "warn"}
	rules := clusterRulesFile(t)
	for _, name := range clusterRoles {
		for i := range instancesPerRole {
			var extra []string
			switch name {
			case "notifier":
				extra = []string{"NOTIFIER_RULES_FILE", rules, "SLACK_WEBHOOK_URL", c.slack.URL}
			case "webhooks":
				extra = []string{"WEBHOOKS_ALLOW_NETWORKS", "127.0.0.0/8"}
			case "realtime":
				extra = []string{"GRPC_ADDR", free(t)}
			case "projector":
				if i == 1 { // the one a partition cuts off NATS
					extra = []string{"NATS_URL", urlsOf(proxied)}
				}
			}
			public := name != "projector" && name != "notifier"
			r := newRole(t, name, public, stores, extra...)
			c.roles[name] = append(c.roles[name], r)
		}
	}
	// One ingest first, alone: it creates the streams (at 3 replicas) the
	// other processes bind to.
	for _, name := range clusterRoles {
		for i, r := range c.roles[name] {
			r.running = newCommand(t, fmt.Sprintf("%s-%d", name, i+1), bin(t, "kiln"), []string{"serve", name}, r.env)
		}
	}
	c.up(c.roles["ingest"][0])
	for _, name := range clusterRoles {
		for _, r := range c.roles[name] {
			if r.running.runs == 0 {
				r.running.start()
			}
		}
		for _, r := range c.roles[name] {
			c.up(r)
		}
	}
	for _, r := range c.roles["ingest"] {
		c.ingestURLs = append(c.ingestURLs, "http://"+r.addr)
	}
	for _, r := range c.roles["gateway"] {
		c.gateways = append(c.gateways, "http://"+r.addr)
	}
	c.nats.waitHealthy()
	clusterEndpoint(t, "http://"+c.roles["webhooks"][0].addr, c.hooks)
	t.Logf("cluster of %d processes ready in %s", len(clusterRoles)*instancesPerRole, time.Since(started).Round(time.Millisecond))
	return c
}

// instance is the i-th process of role name.
func (c *cluster) instance(name string, i int) *role { return c.roles[name][i] }

// restart starts a killed instance again on its addresses and waits for
// its /readyz.
func (c *cluster) restart(r *role) {
	c.t.Helper()
	r.running.start()
	c.up(r)
}

// up waits for the instance's /readyz, starting it (again) when it is not
// running or exits before it is ready — as an orchestrator restarts a
// process that failed at start (a JetStream API call timing out on a
// loaded machine) — at most three runs.
func (c *cluster) up(r *role) {
	c.t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		p := r.running
		p.mu.Lock()
		running, exited := p.cmd != nil, p.exited
		p.mu.Unlock()
		if !running {
			p.start()
			continue
		}
		var gone bool
		ready := assertEventually(2*time.Minute, func() bool {
			select {
			case <-exited:
				gone = true
				return true
			default:
			}
			resp, err := client.Get("http://" + r.admin + "/readyz")
			if err != nil {
				return false
			}
			_ = resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		switch {
		case ready && !gone:
			return
		case gone && p.runs < 3:
			last, _ := os.ReadFile(p.log)
			c.t.Logf("%s exited before it was ready (run %d): starting it again; its log ends:\n%s", p.name, p.runs, tail(last, 300))
			p.mu.Lock()
			p.cmd = nil
			p.mu.Unlock()
		default:
			c.t.Fatalf("%s never ready at http://%s/readyz (%d runs)", p.name, r.admin, p.runs)
		}
	}
}

// clusterRulesFile alerts on every event the workload sends (its message
// the event id): one alert per acked event, once.
func clusterRulesFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "rules.yaml")
	rules := "rules:\n  - {name: cluster-each, match: {type: \"fault.>\"}, channels: [slack], message: \"{{.EventID}}\"}\n" +
		"  - {name: cluster-orders, match: {type: " + orderType + "}, channels: [slack], message: \"{{.EventID}}\"}\n"
	require.NoError(t, os.WriteFile(p, []byte(rules), 0o600))
	return p
}

// clusterEndpoint subscribes the receiver to every event the workload
// sends.
func clusterEndpoint(t *testing.T, base string, hooks *receiver) {
	t.Helper()
	body := fmt.Sprintf(`{"url":%q,"filters":["fault.>",%q]}`, hooks.URL, orderType)
	resp, err := http.Post(base+"/webhook-endpoints", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
}

// spread is a load balancer in a client: each request goes to the next
// of the base URLs' hosts in turn, so a retry lands on another instance.
type spread struct {
	hosts []string
	next  atomic.Uint64
}

func (s *spread) RoundTrip(req *http.Request) (*http.Response, error) {
	host := s.hosts[s.next.Add(1)%uint64(len(s.hosts))]
	req = req.Clone(req.Context())
	req.URL.Host, req.Host = host, host
	return http.DefaultTransport.RoundTrip(req)
}

func spreadOver(urls []string) *spread {
	s := &spread{}
	for _, u := range urls {
		s.hosts = append(s.hosts, strings.TrimPrefix(u, "http://"))
	}
	return s
}

// startLoad is the workload of faults/, its writers' requests spread over
// every ingest instance, and readers paging GET /events and GET /metrics
// on every gateway meanwhile.
func (c *cluster) startLoad(writers int, pause time.Duration) *workload {
	t := c.t
	w := startWorkload(t, c.ingestURLs[0], 0, 0)
	w.client = &http.Client{Timeout: 10 * time.Second, Transport: spreadOver(c.ingestURLs)}
	for range writers {
		w.wg.Go(func() {
			for {
				select {
				case <-w.stop:
					return
				case <-time.After(pause):
				}
				n := w.next.Add(1)
				w.post(fmt.Sprintf("ev-%06d", n), eventTypes[n%int64(len(eventTypes))], time.Now().UnixMilli())
			}
		})
	}
	// One writer of order.created events (ids ord-N, each its own order):
	// the orders read model is checked too.
	w.wg.Go(func() {
		for n := 1; ; n++ {
			select {
			case <-w.stop:
				return
			case <-time.After(5 * pause):
			}
			postOrder(w, fmt.Sprintf("ord-%06d", n))
		}
	})
	reader := &http.Client{Timeout: 10 * time.Second, Transport: spreadOver(c.gateways)}
	w.wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			path := []string{"/events?limit=50", "/metrics"}[i%2]
			if resp, err := reader.Get(c.gateways[0] + path); err == nil {
				_ = resp.Body.Close()
			}
		}
	})
	return w
}

// orderType is the event the orders writer sends.
const orderType = "order.created"

// postOrder posts an order.created event whose order id is its event id,
// retrying (same id) until it is answered 202, as the workload's post.
func postOrder(w *workload, id string) {
	body, _ := json.Marshal(map[string]any{"id": id, "eventType": orderType, "userId": "u1", "timestamp": time.Now().UnixMilli(),
		"metadata": map[string]any{"id": id, "status": "created", "amount": 12.5, "currency": "EUR",
			"customerEmail": "buyer@example.com", "createdAt": time.Now().UTC().Format(time.RFC3339)}})
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := w.client.Post(w.url+"/events", "application/json", bytes.NewReader(body))
		status := 0
		if err == nil {
			status = resp.StatusCode
			_ = resp.Body.Close()
		}
		w.mu.Lock()
		switch status {
		case http.StatusAccepted:
			w.acked[id] = orderType
		case http.StatusBadRequest:
			w.refused[id] = true
		default:
			w.retries++
			w.lastFail = fmt.Sprint(status, err)
		}
		w.mu.Unlock()
		if status == http.StatusAccepted || status == http.StatusBadRequest {
			return
		}
		time.Sleep(100 * time.Millisecond) // a client's retry pause, not synchronisation
	}
}
