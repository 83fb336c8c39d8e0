package faults

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/testsupport"
)

// check stops the load and compares every read model with the acked ids:
// the history, counters (in all and per type) and recent cache (settle),
// GET /metrics and GET /events on every gateway (settleAPI), one alert per
// acked event on Slack and never twice, every acked event delivered to
// the webhook receiver (at least once; duplicates counted, the receiver
// dedupes on the event id). It prints the fault's JSON line; recovery is
// from since (the fault's end) to all of that holding.
func (c *cluster) check(t *testing.T, fault string, w, probes *workload, since time.Time) {
	t.Helper()
	w.finish()
	acked := merged(probes.ackedIDs(), w.ackedIDs())
	p := &pipeline{t: t, db: c.db, rdb: c.rdb, projAdmin: c.instance("projector", 0).admin}
	seen, _ := p.settle(t, acked, settleWithin)
	for _, gw := range c.gateways {
		settleAPI(t, gw, acked)
	}
	require.Empty(t, w.refused, "no event of the workload refused")
	orders := c.checkOrders(t, acked)
	var why string
	var alerted, hooked int
	require.Eventually(t, func() bool {
		byEvent := alertedEvents(c.slack)
		delivered, _ := c.hooks.counts()
		alerted, hooked = 0, 0
		for id := range acked {
			if byEvent[id] > 0 {
				alerted++
			}
			if delivered[id] > 0 {
				hooked++
			}
		}
		why = fmt.Sprintf("%d of %d acked events alerted, %d delivered to the webhook", alerted, len(acked), hooked)
		return alerted == len(acked) && hooked == len(acked)
	}, settleWithin, 250*time.Millisecond, "deliveries incomplete: %s", why)
	d := checkDeliveries(t, c.gateways[1], acked, c.slack, c.hooks)
	recovery := time.Since(since)
	require.Zero(t, d.alertsTwice, "no alert sent twice")
	line := fmt.Sprintf(`{"fault":%q,"acked":%d,"history":%d,"counters":%d,"recent":%d,"orders":%d,"acked_orders":%d,"alerts":%d,"webhooks":%d,"webhook_duplicates":%d,"client_retries":%d,"recovery_s":%.1f}`,
		fault, len(acked), seen.history, seen.counters, seen.recent, orders, ackedOrders(acked), alerted, hooked, d.hookDuplicates, w.retries, recovery.Seconds())
	fmt.Println(line)
	t.Log(line)
	require.Equal(t, len(acked), seen.recent, "the recent cache holds exactly the acked ids")
}

// redisMaster is the address of a Redis Cluster master serving slots.
func (c *cluster) redisMaster() string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nodes, err := c.rdb.(*redis.ClusterClient).ClusterNodes(ctx).Result()
	require.NoError(c.t, err)
	for line := range strings.SplitSeq(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) > 8 && strings.Contains(f[2], "master") && !strings.Contains(f[2], "fail") {
			addr, _, _ := strings.Cut(f[1], "@")
			return addr
		}
	}
	c.t.Fatalf("no master with slots in CLUSTER NODES:\n%s", nodes)
	return ""
}

// waitRedisClusterOK waits until every surviving node reports
// cluster_state:ok with every slot served: the dead master's replica is
// promoted.
func (c *cluster) waitRedisClusterOK(dead string) {
	c.t.Helper()
	var why string
	require.Eventually(c.t, func() bool {
		for _, addr := range c.rcluster.Addrs() {
			if addr == dead {
				continue
			}
			n := redis.NewClient(&redis.Options{Addr: addr})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			info, err := n.ClusterInfo(ctx).Result()
			cancel()
			_ = n.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
				why = fmt.Sprintf("%s: %v %s", addr, err, info)
				return false
			}
		}
		return true
	}, 3*time.Minute, 100*time.Millisecond, "Redis Cluster never promoted a replica: %s", why)
}

// sentinelMaster is the master the first sentinel names.
func (c *cluster) sentinelMaster() string {
	c.t.Helper()
	sc := redis.NewSentinelClient(&redis.Options{Addr: c.rsentinel.SentinelAddrs()[0]})
	defer sc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, err := sc.GetMasterAddrByName(ctx, testsupport.SentinelMasterName).Result()
	require.NoError(c.t, err)
	require.Len(c.t, addr, 2)
	return addr[0] + ":" + addr[1]
}

// waitSentinelPromoted waits until every sentinel names a master other
// than old: the replica is promoted.
func (c *cluster) waitSentinelPromoted(old string) {
	c.t.Helper()
	var why string
	require.Eventually(c.t, func() bool {
		for _, s := range c.rsentinel.SentinelAddrs() {
			sc := redis.NewSentinelClient(&redis.Options{Addr: s})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			addr, err := sc.GetMasterAddrByName(ctx, testsupport.SentinelMasterName).Result()
			cancel()
			_ = sc.Close()
			if err != nil || len(addr) != 2 || addr[0]+":"+addr[1] == old {
				why = fmt.Sprintf("sentinel %s: master %v (%v), the killed one %s", s, addr, err, old)
				return false
			}
		}
		return true
	}, 3*time.Minute, 100*time.Millisecond, "the sentinels never promoted the replica: %s", why)
}

func ackedOrders(acked map[string]string) int {
	n := 0
	for _, typ := range acked {
		if typ == orderType {
			n++
		}
	}
	return n
}

// checkOrders waits until the orders read model holds exactly the acked
// order.created events, each an order of its own id in status created,
// and returns how many it holds.
func (c *cluster) checkOrders(t *testing.T, acked map[string]string) int {
	t.Helper()
	model := readmodel.NewOrders(c.db)
	want := ackedOrders(acked)
	var why string
	var held int
	require.True(t, assertEventually(settleWithin, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		list, err := model.List(ctx, "")
		if err != nil {
			why = err.Error()
			return false
		}
		held = len(list)
		for _, o := range list {
			if acked[o.ID] != orderType || o.Status != "created" {
				why = fmt.Sprintf("order %s (status %q) is no acked order.created", o.ID, o.Status)
				return false
			}
		}
		why = fmt.Sprintf("%d orders, %d acked", held, want)
		return held == want
	}), "the orders read model never matched the acked orders: %s", why)
	return held
}
