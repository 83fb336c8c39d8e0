package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	"github.com/kilnhq/kiln/notifier/slacktest"
	"github.com/kilnhq/kiln/notifier/smtptest"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// alertRules alert on every alert.me event and on more than 2 alert.burst
// events of one user within a minute, on Slack and email.
const alertRules = `rules:
  - {name: every, match: {type: alert.me}, channels: [slack, email]}
  - name: burst
    kind: threshold
    threshold: {count: 2, window: 1m, groupBy: userId}
    match: {type: alert.burst}
    channels: [slack, email]
`

// notifierStandalone runs a standalone whose notifier sends to a fake
// Slack and a real in-process SMTP server, with fast retries.
func notifierStandalone(t *testing.T, env ...string) (*standalonetest.Instance, *slacktest.Server, *smtptest.Server) {
	t.Helper()
	slack, mail := slacktest.Start(t), smtptest.Start(t, smtptest.Options{})
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(rules, []byte(alertRules), 0o600))
	env = append([]string{
		"PROJECTOR_CHECK_INTERVAL", "100ms",
		"NOTIFIER_RULES_FILE", rules, "SLACK_WEBHOOK_URL", slack.URL,
		"SMTP_HOST", mail.Host, "SMTP_PORT", strconv.Itoa(mail.Port), "SMTP_TLS", "none",
		"SMTP_FROM", "kiln@example.com", "SMTP_TO", "ops@example.com",
		"NOTIFIER_BACKOFF_BASE", "20ms", "NOTIFIER_BACKOFF_MAX", "100ms",
	}, env...)
	return standalonetest.Start(t, t.TempDir(), env...), slack, mail
}

// publishEvents stores events as ingest does, one per type given, all by
// user u1 at one timestamp (so a threshold's events share a window).
func publishEvents(t *testing.T, url, prefix string, types ...string) {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	now := time.Now().UnixMilli()
	for i, typ := range types {
		ev := schemas.Event{ID: fmt.Sprintf("%s-%d", prefix, i), EventType: typ, UserID: "u1", Timestamp: now, ReceivedAt: now,
			Metadata: json.RawMessage(`{}`)}
		data, err := json.Marshal(ev)
		require.NoError(t, err)
		msg := nats.NewMsg(schemas.Subject(typ))
		msg.Data = data
		msg.Header.Set(schemas.HeaderMsgID, ev.ID)
		_, err = js.PublishMsg(context.Background(), msg)
		require.NoError(t, err)
	}
}

// listAlerts reads GET /alerts.
func listAlerts(t *testing.T, base string) []readmodel.AlertView {
	t.Helper()
	resp, err := http.Get(base + "/alerts?limit=1000")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var out []readmodel.AlertView
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

// notifierSettled reports whether the notifier has evaluated and acked
// every stored event and every queued delivery job is done.
func notifierSettled(t *testing.T, url string) bool {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	c, err := js.Consumer(ctx, schemas.StreamName, "notifier")
	if err != nil {
		return false
	}
	ci, err := c.Info(ctx)
	if err != nil || ci.NumPending != 0 || ci.NumAckPending != 0 {
		return false
	}
	jobs, err := js.Stream(ctx, "ALERTS") // a work queue: a job leaves it when its delivery is settled
	if err != nil {
		return false
	}
	si, err := jobs.Info(ctx)
	return err == nil && si.State.Msgs == 0
}

// TestReplayNeverReachesTheNotifier: alerts fire on live events; a full
// replay of every projection afterwards sends no Slack message, no email
// and decides no alert.
func TestReplayNeverReachesTheNotifier(t *testing.T) {
	in, slack, mail := notifierStandalone(t)
	ctx := context.Background()
	require.Eventually(t, func() bool { return notifierSettled(t, in.NATSURL) }, 3*time.Minute, 20*time.Millisecond)
	publishEvents(t, in.NATSURL, "e", "alert.me", "a", "alert.me", "alert.burst", "b", "alert.burst", "alert.burst", "alert.burst", "alert.me")
	require.Eventually(t, func() bool {
		return len(slack.Delivered()) == 4 && len(mail.Messages()) == 4 && notifierSettled(t, in.NATSURL)
	}, 3*time.Minute, 20*time.Millisecond, "3 each alerts and 1 threshold alert, on Slack and by email")
	alerts := listAlerts(t, in.Base)
	require.Len(t, alerts, 4)
	for _, a := range alerts {
		require.Equal(t, readmodel.DeliverySent, a.Status, a.ID)
	}
	stream, lastSeq := streamLastSeq(t, in.NATSURL)

	out, err := kiln(ctx, in, "replay", "all", "--yes", "--grace", "100ms")
	require.NoError(t, err, out)
	require.Contains(t, out, "replay complete")

	// The replay stored nothing in the stream, so the notifier has nothing
	// new to evaluate; once it is settled, nothing more can be sent.
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, lastSeq, info.State.LastSeq, "a replay never publishes")
	require.Eventually(t, func() bool { return notifierSettled(t, in.NATSURL) }, 3*time.Minute, 20*time.Millisecond)
	require.Len(t, slack.Requests(), 4, "no webhook call during or after the replay")
	require.Len(t, mail.Messages(), 4, "no email during or after the replay")
	require.Len(t, listAlerts(t, in.Base), 4, "no alert decided by the replay")
}

// TestDLQListAndRedrive: Slack fails every attempt, so the alert's Slack
// delivery lands in the dead-letter stream; kiln dlq list shows it and,
// once Slack answers again, kiln dlq redrive --id sends it exactly once.
func TestDLQListAndRedrive(t *testing.T) {
	in, slack, mail := notifierStandalone(t, "NOTIFIER_MAX_ATTEMPTS", "2")
	ctx := context.Background()
	slack.Fail(http.StatusInternalServerError)
	out, err := kiln(ctx, in, "dlq", "list")
	require.NoError(t, err, out)
	require.Contains(t, out, "no dead letters")

	require.Eventually(t, func() bool { return notifierSettled(t, in.NATSURL) }, 3*time.Minute, 20*time.Millisecond)
	publishEvents(t, in.NATSURL, "d", "alert.me")
	require.Eventually(t, func() bool {
		out, err = kiln(ctx, in, "dlq", "list")
		return err == nil && strings.Contains(out, ":slack")
	}, 3*time.Minute, 50*time.Millisecond, out)
	require.Contains(t, out, "slack webhook answered 500")
	require.Regexp(t, `\d+\s+\S+:slack\s+every\s+2\s`, out)
	out, err = kiln(ctx, in, "dlq", "list", "--json")
	require.NoError(t, err, out)
	var letters []struct {
		Seq uint64 `json:"seq"`
		Job struct {
			Alert   readmodel.Alert `json:"alert"`
			Channel string          `json:"channel"`
		} `json:"job"`
		Error    string `json:"error"`
		Attempts int    `json:"attempts"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &letters), out)
	require.Len(t, letters, 1)
	id := letters[0].Job.Alert.ID + ":slack"
	require.Len(t, slack.Requests(), 2)
	require.Len(t, mail.Messages(), 1, "email is unaffected")
	// The dead letter is published before the delivery's dead state is
	// stored (so a failed store brings the job back rather than losing
	// its letter): the alert turns dead just after the letter appears.
	require.Eventually(t, func() bool {
		alerts := listAlerts(t, in.Base)
		return len(alerts) == 1 && alerts[0].Status == readmodel.DeliveryDead
	}, 3*time.Minute, 50*time.Millisecond, "the alert's status becomes dead")

	out, err = kiln(ctx, in, "dlq", "redrive")
	require.ErrorContains(t, err, "give --all or delivery ids", out)
	out, err = kiln(ctx, in, "dlq", "redrive", "--all", "--id", id)
	require.ErrorContains(t, err, "not both", out)
	out, err = kiln(ctx, in, "dlq", "redrive", "--id", "nope:slack")
	require.ErrorContains(t, err, "no dead letter for nope:slack", out)

	slack.Fail(http.StatusOK) // Slack recovers
	out, err = kiln(ctx, in, "dlq", "redrive", "--id", id)
	require.NoError(t, err, out)
	require.Contains(t, out, "redriven "+id)
	require.Contains(t, out, "1 redriven")
	require.Eventually(t, func() bool {
		return len(slack.Delivered()) == 1 && notifierSettled(t, in.NATSURL)
	}, 3*time.Minute, 20*time.Millisecond)
	require.Len(t, slack.Requests(), 3, "two failed attempts, then the redriven one")
	out, err = kiln(ctx, in, "dlq", "list")
	require.NoError(t, err, out)
	require.Contains(t, out, "no dead letters")
	alerts := listAlerts(t, in.Base)
	require.Equal(t, readmodel.DeliverySent, alerts[0].Status)
	require.Equal(t, 1, alerts[0].Channels[0].Redrives)

	out, err = kiln(ctx, in, "dlq", "redrive", "--all")
	require.NoError(t, err, out)
	require.Contains(t, out, "0 redriven")
}
