package notifier

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/notifier/dlq"
	"github.com/kilnhq/kiln/notifier/internal/jobs"
	"github.com/kilnhq/kiln/notifier/slacktest"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

const eachRules = `rules:
  - name: big-order
    match: {type: order.created, where: [{field: metadata.amount, gt: 1000}]}
    channels: [slack, email, log]
    message: "Order {{.Metadata.id}} of {{.Metadata.amount}} by {{.UserID}}"
`

func TestEachRuleSendsOneSlackMessageAndOneEmailPerMatchingEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, eachRules, nil)
	sub, err := e.js.Conn().SubscribeSync(readmodel.NewAlertSubject)
	require.NoError(t, err)
	e.start(t, nil)

	now := time.Now().UnixMilli()
	e.publish(t,
		event("o1", "order.created", "u1", now, `{"id":"o-1","amount":1500}`),
		event("o2", "order.created", "u2", now, `{"id":"o-2","amount":999}`), // below the condition
		event("o3", "order.created", "u3", now, `{"id":"o-3","amount":2500.5}`),
		event("o4", "order.canceled", "u1", now, `{"id":"o-1","amount":1500}`),  // other type
		event("o5", "order.created", "u4", now, `{"id":"o-5","amount":"5000"}`), // a string is not a number
	)
	// A late duplicate of o1 stored again under another message id is the
	// same event: it decides nothing new.
	e.publishAs(t, event("o1", "order.created", "u1", now, `{"id":"o-1","amount":1500}`), "o1-again")
	require.Eventually(t, func() bool {
		return len(e.slack.Delivered()) == 2 && len(e.smtp.Messages()) == 2
	}, 2*time.Minute, 20*time.Millisecond)
	e.settle(t)

	require.Len(t, e.slack.Requests(), 2, "exactly one Slack message per matching event")
	require.Len(t, e.smtp.Messages(), 2, "exactly one email per matching event")
	texts := []string{e.slack.Delivered()[0].Text, e.slack.Delivered()[1].Text}
	require.ElementsMatch(t, []string{"Order o-1 of 1500 by u1", "Order o-3 of 2500.5 by u3"}, texts)
	require.Contains(t, e.smtp.Messages()[0].Subject, "[Kiln] big-order: Order o-")

	alerts := e.alerts(t)
	require.Len(t, alerts, 2)
	for _, a := range alerts {
		require.Equal(t, readmodel.DeliverySent, a.Status, "alert %s", a.ID)
		require.Len(t, a.Deliveries, 3)
		for _, d := range a.Deliveries {
			require.Equal(t, readmodel.DeliverySent, d.Status)
			require.Equal(t, 1, d.Attempts)
		}
	}
	require.EqualValues(t, 2, e.metric(t, "kiln_notifier_alerts_decided_total", "rule", "big-order"))
	require.EqualValues(t, 2, e.metric(t, "kiln_notifier_deliveries_total", "channel", "slack", "outcome", "sent"))
	require.EqualValues(t, 6, e.metric(t, "kiln_notifier_events_evaluated_total"))

	// Each new alert was announced once for the gateway's SSE stream.
	for range 2 {
		m, err := sub.NextMsg(5 * time.Second)
		require.NoError(t, err)
		var a readmodel.AlertView
		require.NoError(t, json.Unmarshal(m.Data, &a))
		require.Equal(t, "big-order", a.Rule)
		require.Equal(t, readmodel.DeliveryPending, a.Status)
		require.Len(t, a.Channels, 3)
		require.Equal(t, readmodel.ChannelView{Name: "slack", Status: readmodel.DeliveryPending}, a.Channels[0])
		require.Positive(t, a.Seq)
		require.Positive(t, a.CreatedAt)
	}
	_, err = sub.NextMsg(100 * time.Millisecond)
	require.Error(t, err, "no third announcement")
}

const thresholdRules = `rules:
  - name: payment-failed-burst
    kind: threshold
    threshold: {count: 5, window: 1m, groupBy: userId}
    match: {type: payment.failed}
    channels: [slack]
`

func TestThresholdFiresOncePerWindowPerUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, thresholdRules, nil)
	e.start(t, nil)
	w1, w2 := minute(3), minute(2)
	fail := func(id, user string, ts int64) { e.publish(t, event(id, "payment.failed", user, ts, "")) }
	for i := range 5 {
		fail(fmt.Sprintf("a%d", i), "u1", w1+int64(i)*1000)
		fail(fmt.Sprintf("b%d", i), "u2", w1+int64(i)*1000)
	}
	e.settle(t)
	require.Empty(t, e.slack.Requests(), "5 failures are not more than 5")

	fail("a5", "u1", w1+59_000) // u1's sixth in the window: fires
	for i := 6; i < 12; i++ {
		fail(fmt.Sprintf("a%d", i), "u1", w1+30_000) // same window: never again
	}
	for i := range 6 {
		fail(fmt.Sprintf("c%d", i), "u1", w2+int64(i)) // next window: fires once more
	}
	fail("b5", "u2", w2) // u2's sixth, but in the next window: nothing
	e.settle(t)

	require.Len(t, e.slack.Delivered(), 2)
	require.Len(t, e.slack.Requests(), 2)
	alerts := e.alerts(t)
	require.Len(t, alerts, 2)
	byWindow := map[int64]readmodel.Alert{}
	for _, a := range alerts {
		byWindow[a.WindowStart] = a
	}
	require.Equal(t, "u1", byWindow[w1].Group)
	require.Equal(t, 6, byWindow[w1].Count)
	require.Equal(t, "a5", byWindow[w1].EventID)
	require.Equal(t, w1+60_000, byWindow[w1].WindowEnd)
	require.Equal(t, "u1", byWindow[w2].Group)
	require.Contains(t, e.slack.Delivered()[0].Text, "payment-failed-burst: 6 payment.failed events for u1 within 1m0s (more than 5)")
}

const throttleRules = `rules:
  - name: fraud
    match: {type: order.canceled, where: [{field: metadata.reason, in: [fraud, chargeback]}]}
    dedupe: "{{.UserID}}"
    throttle: 10m
    channels: [slack]
  - name: burst
    kind: threshold
    threshold: {count: 1, window: 1m, groupBy: userId}
    match: {type: payment.failed}
    throttle: 10m
    channels: [slack]
`

func TestThrottleSuppressesRepeats(t *testing.T) {
	t.Parallel()
	e := newEnv(t, throttleRules, nil)
	e.start(t, nil)
	t0 := minute(30)
	cancel := func(id, user string, ts int64) schemas.Event {
		return event(id, "order.canceled", user, ts, `{"reason":"fraud"}`)
	}
	e.publish(t,
		cancel("f1", "u1", t0),                               // alert
		cancel("f2", "u1", t0+time.Minute.Milliseconds()),    // same key within 10m: suppressed
		cancel("f3", "u2", t0+time.Minute.Milliseconds()),    // another key: alert
		cancel("f4", "u1", t0+11*time.Minute.Milliseconds()), // after the throttle: alert
	)
	// Threshold windows of one user: minute 1 fires, minute 2 is within the
	// throttle, minute 12 is not.
	for _, m := range []int64{0, 1, 12} {
		for i := range 2 {
			e.publish(t, event(fmt.Sprintf("p%d-%d", m, i), "payment.failed", "u1", t0+m*time.Minute.Milliseconds()+int64(i), ""))
		}
	}
	e.settle(t)
	require.Len(t, e.slack.Delivered(), 5)
	rules := map[string]int{}
	for _, a := range e.alerts(t) {
		rules[a.Rule]++
	}
	require.Equal(t, map[string]int{"fraud": 3, "burst": 2}, rules)
	require.EqualValues(t, 1, e.metric(t, "kiln_notifier_alerts_suppressed_total", "rule", "fraud"))
	require.EqualValues(t, 1, e.metric(t, "kiln_notifier_alerts_suppressed_total", "rule", "burst"))
}

const slackOnly = `rules:
  - {name: big-order, match: {type: order.created}, channels: [slack, email]}
`

func TestSlackFailingThreeTimesThenDeliveredOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slackOnly, map[string]string{"NOTIFIER_MAX_ATTEMPTS": "5"})
	e.slack.Script(slacktest.Answer{Status: 500}, slacktest.Answer{Status: 500}, slacktest.Answer{Status: 500})
	e.start(t, nil)
	e.publish(t, event("o1", "order.created", "u1", time.Now().UnixMilli(), ""))
	require.Eventually(t, func() bool { return len(e.slack.Delivered()) == 1 }, 2*time.Minute, 20*time.Millisecond)
	e.settle(t)

	reqs := e.slack.Requests()
	require.Len(t, reqs, 4)
	require.Equal(t, []int{500, 500, 500, 200}, []int{reqs[0].Status, reqs[1].Status, reqs[2].Status, reqs[3].Status})
	require.Len(t, e.slack.Delivered(), 1, "delivered once")
	require.Len(t, e.smtp.Messages(), 1, "email unaffected by Slack's trouble")
	a := e.alerts(t)[0]
	require.Equal(t, readmodel.DeliverySent, a.Status)
	require.Equal(t, 4, a.Deliveries[0].Attempts)
	require.Empty(t, a.Deliveries[0].LastError)
	require.EqualValues(t, 3, e.metric(t, "kiln_notifier_deliveries_total", "channel", "slack", "outcome", "retry"))
}

func TestSlackAlwaysFailingGoesToDLQAndRedriveDeliversOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, slackOnly, nil)
	e.slack.Fail(http.StatusInternalServerError)
	e.start(t, nil)
	e.publish(t, event("o1", "order.created", "u1", time.Now().UnixMilli(), ""))

	var letters []dlq.DeadLetter
	require.Eventually(t, func() bool {
		var err error
		letters, err = dlq.List(ctx, e.js)
		return err == nil && len(letters) == 1
	}, 2*time.Minute, 20*time.Millisecond)
	e.settle(t)
	dead := letters[0]
	id := dead.Job.Alert.ID + ":slack"
	require.Equal(t, id, dead.Job.ID())
	require.Equal(t, 3, dead.Attempts)
	require.Contains(t, dead.Error, "slack webhook answered 500")
	require.NotContains(t, dead.Error, "secret-token", "the webhook URL is a secret")
	require.Len(t, e.slack.Requests(), 3, "NOTIFIER_MAX_ATTEMPTS attempts")
	require.Empty(t, e.slack.Delivered())
	require.Len(t, e.smtp.Messages(), 1)
	a := e.alerts(t)[0]
	require.Equal(t, readmodel.DeliveryDead, a.Status)
	require.Equal(t, readmodel.DeliveryDead, a.Deliveries[0].Status)
	require.Contains(t, a.Deliveries[0].LastError, "500")

	_, err := dlq.Redrive(ctx, e.js, []string{"nope:slack"})
	require.ErrorContains(t, err, "no dead letter for nope:slack")

	e.slack.Fail(http.StatusOK) // Slack recovers
	done, err := dlq.Redrive(ctx, e.js, []string{id})
	require.NoError(t, err)
	require.Len(t, done, 1)
	require.Eventually(t, func() bool { return len(e.slack.Delivered()) == 1 }, 2*time.Minute, 20*time.Millisecond)
	e.settle(t)
	letters, err = dlq.List(ctx, e.js)
	require.NoError(t, err)
	require.Empty(t, letters)
	a = e.alerts(t)[0]
	require.Equal(t, readmodel.DeliverySent, a.Status)
	require.Equal(t, 1, a.Deliveries[0].Redrives)
	require.Equal(t, 4, a.Deliveries[0].Attempts)

	// A job for a delivery that was sent meanwhile (a second redrive, a
	// stray duplicate) sends nothing.
	require.NoError(t, jobs.Publish(ctx, e.js, jobs.Job{Alert: dead.Job.Alert, Channel: "slack", Redrive: dead.Seq}, id+":again"))
	require.Eventually(t, func() bool {
		return e.metric(t, "kiln_notifier_deliveries_total", "channel", "slack", "outcome", "skipped") == 1
	}, 2*time.Minute, 20*time.Millisecond)
	require.Len(t, e.slack.Delivered(), 1, "redrive delivered once")
	require.Len(t, e.slack.Requests(), 4)
	require.Len(t, e.smtp.Messages(), 1)
}

func TestInvalidRulesFileStopsStartUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `rules:
  - {name: fine, match: {type: a}, channels: [log]}
  - {name: broken-threshold, kind: threshold, threshold: {count: 5, window: forever}, match: {type: b}, channels: [log]}
`, nil)
	_, err := New(context.Background(), e.cfg, Deps{JetStream: e.js, Mongo: e.db, Metrics: prometheus.NewRegistry(), Log: testsupport.Logger(t)})
	require.Error(t, err)
	require.Contains(t, err.Error(), `rule "broken-threshold" (rules[1], line 3): threshold.window`)
	require.True(t, strings.HasPrefix(err.Error(), "notifier: "+e.cfg.RulesFile+": invalid rules"), err.Error())
}

// TestSlack429WaitsForRetryAfter: Slack's Retry-After sets the next
// attempt's delay (within NOTIFIER_BACKOFF_MAX), not the backoff.
func TestSlack429WaitsForRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slackOnly, map[string]string{"NOTIFIER_BACKOFF_BASE": "10ms", "NOTIFIER_BACKOFF_MAX": "5s"})
	e.slack.Script(slacktest.Answer{Status: http.StatusTooManyRequests, RetryAfter: time.Second})
	e.start(t, nil)
	e.publish(t, event("o1", "order.created", "u1", time.Now().UnixMilli(), ""))
	require.Eventually(t, func() bool { return len(e.slack.Delivered()) == 1 }, 2*time.Minute, 20*time.Millisecond)
	e.settle(t)
	reqs := e.slack.Requests()
	require.Len(t, reqs, 2)
	require.Equal(t, []int{429, 200}, []int{reqs[0].Status, reqs[1].Status})
	require.GreaterOrEqual(t, reqs[1].At.Sub(reqs[0].At), time.Second, "the retry waited for Retry-After, not the 10ms backoff")
	require.Equal(t, readmodel.DeliverySent, e.alerts(t)[0].Status)
}
