package notifier

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/notifier/internal/decide"
	"github.com/kilnhq/kiln/notifier/internal/evaluate"
	"github.com/kilnhq/kiln/notifier/internal/lease"
	"github.com/kilnhq/kiln/testsupport"
)

// haRules has a threshold rule (more than 5 failures of one user in a
// minute) and an each rule, both to Slack only, so Slack's requests count
// the alerts.
const haRules = `rules:
  - name: payment-failed-burst
    kind: threshold
    threshold: {count: 5, window: 1m, groupBy: userId}
    match: {type: payment.failed}
    channels: [slack]
  - name: big-order
    match: {type: order.created, where: [{field: metadata.amount, gt: 1000}]}
    channels: [slack]
`

// node is one notifier process of several on the same servers.
type node struct {
	svc    *Service
	reg    *prometheus.Registry
	stop   func() // graceful: releases the lease
	killed atomic.Bool
}

// startNode runs one more notifier process. crash, when set, is consulted
// at each crash point: returning true kills the process there, keeping
// its lease as a killed process does.
func (e *testEnv) startNode(t *testing.T, crash func(point, id string) bool) *node {
	t.Helper()
	n := &node{reg: prometheus.NewRegistry()}
	svc, err := New(context.Background(), e.cfg, Deps{JetStream: e.js, Mongo: e.db, Metrics: n.reg, Log: testsupport.Logger(t)})
	require.NoError(t, err)
	n.svc = svc
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	svc.crash = func(point, id string) bool {
		if crash != nil && crash(point, id) {
			n.kill(cancel)
			return true
		}
		return false
	}
	n.stop = testsupport.Run(t, ctx, svc.Run)
	return n
}

// kill stops the process without releasing its lease.
func (n *node) kill(cancel func()) {
	n.killed.Store(true)
	n.svc.abandon.Store(true)
	cancel()
}

// active reads the node's kiln_notifier_active gauge.
func (n *node) active(t *testing.T) bool {
	t.Helper()
	families, err := n.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == "kiln_notifier_active" {
			return f.GetMetric()[0].GetGauge().GetValue() == 1
		}
	}
	t.Fatal("no kiln_notifier_active gauge")
	return false
}

func (n *node) evaluated(t *testing.T) float64 {
	t.Helper()
	families, err := n.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == "kiln_notifier_events_evaluated_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

func waitActive(t *testing.T, n *node) {
	t.Helper()
	require.Eventually(t, func() bool { return n.active(t) }, 2*time.Minute, 10*time.Millisecond, "the node never became active")
}

// alertIDs are the ids of the stored alerts.
func (e *testEnv) alertIDs(t *testing.T) []string {
	t.Helper()
	ids := []string{}
	for _, a := range e.alerts(t) {
		ids = append(ids, a.ID)
	}
	return ids
}

// TestStandbyTakesOverWhenTheActiveDies runs two notifiers, kills the
// active one mid-work (after it stored an alert, before it queued its
// delivery and acked the event) while a threshold window is half-way,
// and checks the standby takes over, finishes that alert, completes the
// window with events counted by both processes, and that every alert is
// decided and sent exactly once — what one process would have done.
func TestStandbyTakesOverWhenTheActiveDies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, haRules, map[string]string{"NOTIFIER_LEASE_TTL": "2s"})
	o2 := evaluate.EachID("big-order", "o2")
	a := e.startNode(t, func(point, id string) bool { return point == decide.CrashDecided && id == o2 })
	waitActive(t, a)
	require.Eventually(t, e.consumerReady, 2*time.Minute, 10*time.Millisecond)
	b := e.startNode(t, nil)

	w := time.Now().Truncate(time.Minute).UnixMilli()
	fail := func(id, user string) { e.publish(t, event(id, "payment.failed", user, w+int64(len(id)), "")) }
	order := func(id string) {
		e.publish(t, event(id, "order.created", "u9", w, fmt.Sprintf(`{"id":%q,"amount":5000}`, id)))
	}
	for i := range 6 {
		fail(fmt.Sprintf("b%d", i), "u2") // u2 fires on the first process
	}
	for i := range 3 {
		fail(fmt.Sprintf("a%d", i), "u1") // u1 half-way on the first process
	}
	order("o1")
	e.settle(t)
	require.Len(t, e.slack.Delivered(), 2, "u2's burst and o1")
	require.True(t, a.active(t))
	require.False(t, b.active(t), "one process is active, the other stands by")
	require.Zero(t, b.evaluated(t), "the standby evaluated nothing")

	order("o2") // the first process stores its alert and dies before queueing it
	require.Eventually(t, a.killed.Load, 2*time.Minute, 10*time.Millisecond)
	killed := time.Now()
	fail("a3", "u1") // stored while no process is active
	waitActive(t, b)
	t.Logf("failover after the kill: %s (lease TTL %s)", time.Since(killed).Round(time.Millisecond), e.cfg.LeaseTTL)
	require.False(t, a.active(t))

	fail("a4", "u1")
	fail("a5", "u1") // u1's sixth: fires, counting three events the first process saw
	fail("b6", "u2") // u2's window fired before: nothing new
	order("o3")
	require.Eventually(t, func() bool { return len(e.slack.Delivered()) == 5 }, 2*time.Minute, 20*time.Millisecond)
	e.settle(t)

	require.Len(t, e.slack.Requests(), 5, "each alert sent exactly once")
	require.ElementsMatch(t, []string{
		evaluate.ThresholdID("payment-failed-burst", "u1", w), evaluate.ThresholdID("payment-failed-burst", "u2", w),
		evaluate.EachID("big-order", "o1"), o2, evaluate.EachID("big-order", "o3"),
	}, e.alertIDs(t), "the alerts one process would have decided, each once")
	require.EqualValues(t, 6, b.evaluated(t), "the standby evaluated the events from the kill on: o2 again, a3–a5, b6, o3")
}

// TestGracefulStopHandsOverAtOnce stops the active notifier as a rolling
// update does: it releases the lease, so the standby takes over without
// waiting for the lease to expire.
func TestGracefulStopHandsOverAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, haRules, map[string]string{"NOTIFIER_LEASE_TTL": "30s"})
	a := e.startNode(t, nil)
	waitActive(t, a)
	b := e.startNode(t, nil)
	require.Eventually(t, e.consumerReady, 2*time.Minute, 10*time.Millisecond)

	a.stop()
	stopped := time.Now()
	waitActive(t, b)
	took := time.Since(stopped)
	t.Logf("handover after a graceful stop: %s", took.Round(time.Millisecond))
	require.Less(t, took, 15*time.Second, "taken over before the released lease could have expired (30s TTL, renewed every 7.5s)")

	e.publish(t, event("o1", "order.created", "u1", time.Now().UnixMilli(), `{"amount":5000}`))
	require.Eventually(t, func() bool { return len(e.slack.Delivered()) == 1 }, 2*time.Minute, 20*time.Millisecond)
	e.settle(t)
	require.Len(t, e.slack.Requests(), 1)
}

// TestActiveThatLosesItsLeaseStopsEvaluating takes the lease from under
// the active process, as a standby does when the active one was paused
// past the TTL: the paused one must stop at its next renewal and stand by,
// so only one process evaluates.
func TestActiveThatLosesItsLeaseStopsEvaluating(t *testing.T) {
	t.Parallel()
	e := newEnv(t, haRules, map[string]string{"NOTIFIER_LEASE_TTL": "15s"})
	a := e.startNode(t, nil)
	waitActive(t, a)
	require.Eventually(t, e.consumerReady, 2*time.Minute, 10*time.Millisecond)

	kv, err := e.js.KeyValue(context.Background(), lease.Bucket)
	require.NoError(t, err)
	require.NoError(t, kv.Delete(context.Background(), lease.Key))
	_, err = kv.Create(context.Background(), lease.Key, []byte("another process"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !a.active(t) }, 2*time.Minute, 10*time.Millisecond,
		"the process whose lease was taken stops")

	e.publish(t, event("o1", "order.created", "u1", time.Now().UnixMilli(), `{"amount":5000}`))
	require.Never(t, func() bool { return a.evaluated(t) > 0 }, 2*time.Second, 50*time.Millisecond,
		"a process without the lease evaluates nothing")
	require.NoError(t, kv.Delete(context.Background(), lease.Key)) // the other process goes away
	waitActive(t, a)
	require.Eventually(t, func() bool { return len(e.slack.Delivered()) == 1 }, 2*time.Minute, 20*time.Millisecond)
	e.settle(t)
	require.Len(t, e.slack.Requests(), 1)
}
