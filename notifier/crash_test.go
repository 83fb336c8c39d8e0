package notifier

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/notifier/internal/decide"
	"github.com/kilnhq/kiln/notifier/internal/delivery"
	"github.com/kilnhq/kiln/readmodel"
)

// TestCrashAndRestartNeitherDropsNorDoubleSends kills the notifier at each
// point between deciding an alert and acking its delivery, restarts it, and
// checks the alert reaches Slack and email exactly once — except in the
// one window no design without an idempotent channel can close, which the
// last case pins down as documented: a crash after the channel's 200 and
// before "sent" is recorded sends that alert again after the restart.
func TestCrashAndRestartNeitherDropsNorDoubleSends(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, point string
		sentAtCrash int
		slackSends  int // Slack messages in the end
	}{
		{"after the alert was decided, before its jobs were queued", decide.CrashDecided, 0, 1},
		{"before the send", delivery.CrashBeforeSend, 0, 1},
		{"after the send was recorded, before the ack", delivery.CrashAfterRecord, 1, 1},
		{"the unavoidable window: after the channel's 200, before the record", delivery.CrashAfterSend, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, eachRules, nil)
			var crashed atomic.Bool
			stop := e.start(t, func(point, id string) bool {
				hit := point == tc.point && (point == decide.CrashDecided || strings.HasSuffix(id, ":slack"))
				return hit && crashed.CompareAndSwap(false, true)
			})
			e.publish(t, event("o1", "order.created", "u1", time.Now().UnixMilli(), `{"id":"o-1","amount":5000}`))
			require.Eventually(t, crashed.Load, 2*time.Minute, 10*time.Millisecond)
			stop()
			require.Len(t, e.slack.Delivered(), tc.sentAtCrash)
			alerts := e.alerts(t)
			require.Len(t, alerts, 1, "the alert was decided (stored) before the crash")
			switch tc.point {
			case delivery.CrashAfterRecord:
				require.Equal(t, readmodel.DeliverySent, alerts[0].Deliveries[0].Status, "sent was recorded before the crash")
			case delivery.CrashAfterSend:
				require.NotEqual(t, readmodel.DeliverySent, alerts[0].Deliveries[0].Status, "sent, but not recorded")
			}

			e.start(t, nil) // the unacked event or job comes back after NOTIFIER_ACK_WAIT
			require.Eventually(t, func() bool {
				return len(e.slack.Delivered()) == tc.slackSends && len(e.smtp.Messages()) == 1
			}, 2*time.Minute, 20*time.Millisecond)
			e.settle(t)
			require.Len(t, e.slack.Requests(), tc.slackSends, "Slack got it exactly once (twice only in the unavoidable window)")
			require.Len(t, e.smtp.Messages(), 1, "email went exactly once")
			alerts = e.alerts(t)
			require.Len(t, alerts, 1)
			require.Equal(t, readmodel.DeliverySent, alerts[0].Status)
		})
	}
}

func TestRestartRebuildsThresholdWindowsWithoutResending(t *testing.T) {
	t.Parallel()
	e := newEnv(t, thresholdRules, nil)
	stop := e.start(t, nil)
	w := minute(1)
	fail := func(id, user string) { e.publish(t, event(id, "payment.failed", user, w+int64(len(id)), "")) }
	for i := range 6 {
		fail(fmt.Sprintf("b%d", i), "u2") // u2 fires before the restart
	}
	for i := range 3 {
		fail(fmt.Sprintf("a%d", i), "u1") // u1 is half-way
	}
	e.settle(t)
	require.Len(t, e.slack.Delivered(), 1)
	stop()

	e.start(t, nil) // rebuilds the windows from the stream, deciding nothing
	require.Eventually(t, func() bool { return e.metric(t, "kiln_notifier_rebuild_events_total") == 9 },
		2*time.Minute, 10*time.Millisecond)
	e.settle(t)
	require.Len(t, e.slack.Requests(), 1, "the rebuild sends nothing")

	for i := 3; i < 6; i++ {
		fail(fmt.Sprintf("a%d", i), "u1") // u1's 4th–6th: fires, counting the 3 from before the restart
	}
	fail("b6", "u2") // u2's window fired before the restart: nothing new
	e.settle(t)
	require.Len(t, e.slack.Requests(), 2)
	groups := []string{}
	for _, a := range e.alerts(t) {
		groups = append(groups, a.Group)
	}
	require.ElementsMatch(t, []string{"u1", "u2"}, groups)
}

func TestEventsStoredBeforeTheNotifierNeverAlert(t *testing.T) {
	t.Parallel()
	e := newEnv(t, eachRules, nil)
	now := time.Now().UnixMilli()
	e.publish(t, event("old", "order.created", "u1", now, `{"amount":5000}`)) // history
	stop := e.start(t, nil)
	e.publish(t, event("new", "order.created", "u1", now, `{"amount":5000}`))
	e.settle(t)
	stop()
	e.start(t, nil) // a restart reads the stream again to rebuild windows: still nothing old
	e.settle(t)
	require.Len(t, e.slack.Requests(), 1)
	alerts := e.alerts(t)
	require.Len(t, alerts, 1)
	require.Equal(t, "new", alerts[0].EventID)

	info, err := e.js.Consumer(context.Background(), "EVENTS", decide.Durable)
	require.NoError(t, err)
	require.Equal(t, jetstream.DeliverNewPolicy, info.CachedInfo().Config.DeliverPolicy, "the consumer starts at new events")
}
