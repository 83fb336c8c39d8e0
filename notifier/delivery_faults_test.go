package notifier

import (
	"context"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/notifier/dlq"
	"github.com/kilnhq/kiln/notifier/internal/delivery"
	"github.com/kilnhq/kiln/notifier/internal/jobs"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/testsupport"
)

// behindProxy points the notifier at the same database through a proxy
// the test can cut.
func (e *testEnv) behindProxy(t *testing.T, m *testsupport.Mongo) *testsupport.Proxy {
	t.Helper()
	target := strings.TrimSuffix(strings.TrimPrefix(m.URI(), "mongodb://"), "/")
	p := testsupport.StartProxy(t, target)
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + p.Addr() + "/").
		SetServerSelectionTimeout(2 * time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	e.db = client.Database(e.db.Name())
	return p
}

// A MongoDB outage while a job waits for its next attempt redelivers it
// many times (MongoDB errors, expired AckWaits); none of those is a channel
// attempt, so the job still gets NOTIFIER_MAX_ATTEMPTS sends before the DLQ.
func TestMongoOutageDoesNotCountAsDeliveryAttempts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := testsupport.StartMongo(t)
	e := newEnv(t, slackOnly, map[string]string{"NOTIFIER_MAX_ATTEMPTS": "3", "NOTIFIER_BACKOFF_BASE": "200ms",
		"NOTIFIER_BACKOFF_MAX": "200ms"})
	e.db = m.Database(t)
	proxy := e.behindProxy(t, m)
	e.slack.Fail(http.StatusInternalServerError)
	e.start(t, nil)
	e.publish(t, event("o1", "order.created", "u1", time.Now().UnixMilli(), ""))
	require.Eventually(t, func() bool { return len(e.slack.Requests()) == 1 && len(e.smtp.Messages()) == 1 },
		2*time.Minute, 10*time.Millisecond)
	// Cut only once the failed attempt is stored: cut while it is being
	// saved, the attempt goes uncounted (one send more, by design).
	require.Eventually(t, func() bool {
		list, err := readmodel.NewAlerts(e.db).List(ctx, readmodel.AlertFilter{Limit: 10})
		if err != nil || len(list) != 1 {
			return false
		}
		for _, d := range list[0].Deliveries {
			if d.Channel == "slack" {
				return d.Attempts == 1
			}
		}
		return false
	}, 2*time.Minute, 10*time.Millisecond, "the first Slack attempt is recorded")
	proxy.Cut()
	slack, err := e.js.Consumer(ctx, jobs.Stream, delivery.Durable("slack"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := slack.Info(ctx)
		return err == nil && info.Delivered.Consumer >= 6
	}, time.Minute, 50*time.Millisecond, "the job is redelivered during the outage")
	require.Len(t, e.slack.Requests(), 1, "nothing reached Slack while MongoDB was down")
	proxy.Restore()

	var letters []dlq.DeadLetter
	require.Eventually(t, func() bool {
		letters, err = dlq.List(ctx, e.js)
		return err == nil && len(letters) == 1
	}, time.Minute, 20*time.Millisecond)
	e.settle(t)
	require.Equal(t, 3, letters[0].Attempts)
	require.Len(t, e.slack.Requests(), 3, "NOTIFIER_MAX_ATTEMPTS sends, however often the job came back")
	a := e.alerts(t)[0]
	require.Equal(t, readmodel.DeliveryDead, a.Deliveries[0].Status)
	require.Equal(t, 3, a.Deliveries[0].Attempts)
}

// Slack and the SMTP server both down for the outage (Slack answering 503,
// the SMTP server unreachable), then back: every alert is delivered once
// on each channel, none went to the DLQ. The full fault suite
// (KILN_FAULTS=1) holds them down 60 s with second-scale backoff; the
// attempts must outlast it (NOTIFIER_MAX_ATTEMPTS 8 at 1 s doubling is
// 127 s; the default 5 attempts is 15 s, after which alerts wait in the
// DLQ for a redrive).
func TestSlackAndSMTPDownThenDeliveredOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	down, env := 2*time.Second, map[string]string{"NOTIFIER_MAX_ATTEMPTS": "8", "NOTIFIER_BACKOFF_BASE": "50ms",
		"NOTIFIER_BACKOFF_MAX": "1s"}
	if os.Getenv("KILN_FAULTS") != "" {
		down, env = 60*time.Second, map[string]string{"NOTIFIER_MAX_ATTEMPTS": "8", "NOTIFIER_BACKOFF_BASE": "1s",
			"NOTIFIER_BACKOFF_MAX": "5m"}
	}
	e := newEnv(t, slackOnly, env)
	proxy := testsupport.StartProxy(t, net.JoinHostPort(e.smtp.Host, strconv.Itoa(e.smtp.Port)))
	_, port, err := net.SplitHostPort(proxy.Addr())
	require.NoError(t, err)
	e.cfg.SMTPPort, err = strconv.Atoi(port)
	require.NoError(t, err)
	e.slack.Fail(http.StatusServiceUnavailable)
	proxy.Cut()
	e.start(t, nil)
	const alerts = 5
	for i := range alerts {
		e.publish(t, event("o"+strconv.Itoa(i), "order.created", "u1", time.Now().UnixMilli(), ""))
	}
	require.Eventually(t, func() bool { return len(e.slack.Requests()) >= alerts }, time.Minute, 20*time.Millisecond,
		"every alert was tried on Slack while it was down")
	time.Sleep(down) // the outage
	e.slack.Fail(http.StatusOK)
	proxy.Restore()
	back := time.Now()
	require.Eventually(t, func() bool { return len(e.slack.Delivered()) == alerts && len(e.smtp.Messages()) == alerts },
		5*time.Minute, 50*time.Millisecond, "delivered after the outage")
	recovery := time.Since(back)
	e.settle(t)
	require.Len(t, e.slack.Delivered(), alerts, "once each on Slack")
	require.Len(t, e.smtp.Messages(), alerts, "once each by email")
	letters, err := dlq.List(ctx, e.js)
	require.NoError(t, err)
	require.Empty(t, letters)
	for _, a := range e.alerts(t) {
		require.Equal(t, readmodel.DeliverySent, a.Status, "alert %s", a.ID)
	}
	t.Logf(`{"fault":"Slack and SMTP down %s","alerts":%d,"slack":%d,"email":%d,"dlq":0,"recovery_s":%.1f}`,
		down, alerts, len(e.slack.Delivered()), len(e.smtp.Messages()), recovery.Seconds())
}
