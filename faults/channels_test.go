package faults

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/testsupport"
)

// slackHook is a Slack incoming webhook that answers 503 while down and
// counts the messages it accepted.
type slackHook struct {
	down             atomic.Bool
	tried, delivered atomic.Int64
	*httptest.Server
}

func startSlack(t *testing.T) *slackHook {
	s := &slackHook{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.tried.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.delivered.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

// smtpSink is the smallest SMTP server the notifier's client talks to
// (no TLS, no auth); it counts the messages it accepted.
type smtpSink struct {
	ln       net.Listener
	messages atomic.Int64
	wg       sync.WaitGroup
}

func startSMTP(t *testing.T) *smtpSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &smtpSink{ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(func() { _ = ln.Close(); s.wg.Wait() })
	return s
}

func (s *smtpSink) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	say := func(line string) bool { _, err := io.WriteString(c, line+"\r\n"); return err == nil }
	if !say("220 sink ESMTP") {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "DATA":
			say("354 end with <CRLF>.<CRLF>")
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if strings.TrimRight(l, "\r\n") == "." {
					break
				}
			}
			s.messages.Add(1)
			say("250 queued")
		case "QUIT":
			say("221 bye")
			return
		case "EHLO", "HELO":
			say("250 sink")
		default: // MAIL, RCPT, RSET, NOOP
			say("250 ok")
		}
	}
}

// Slack (503) and the SMTP server (unreachable) down for the outage, the
// notifier — a process, as in production — killed with kill -9 during it
// and started again: once both channels are back, every alert is delivered
// once on each, and every alert is sent (none dead, so none in the DLQ).
// The full suite holds the channels down 60 s with second-scale backoff;
// the attempts must outlast it (NOTIFIER_MAX_ATTEMPTS 8 at 1 s doubling is
// 127 s).
func TestSlackAndSMTPDownThenDeliveredOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	down := outage(t)
	backoffBase, backoffMax := "50ms", "1s"
	if full() {
		backoffBase, backoffMax = "1s", "5m"
	}
	ns := testsupport.StartNATS(t)
	m := testsupport.StartMongo(t)
	db := m.Database(t)
	ingestAddr := free(t)
	ing := newProc(t, "ingest", map[string]string{
		"NATS_URL": ns.URL(), "INGEST_ADDR": ingestAddr, "INGEST_ADMIN_ADDR": free(t), "LOG_LEVEL": "warn",
	})
	ing.start()
	waitReady(t, "http://"+ingestAddr+"/readyz")

	slack, sink := startSlack(t), startSMTP(t)
	smtpProxy := testsupport.StartProxy(t, sink.ln.Addr().String())
	smtpHost, smtpPort, err := net.SplitHostPort(smtpProxy.Addr())
	require.NoError(t, err)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(rules, []byte("rules:\n  - {name: big-order, match: {type: order.created}, channels: [slack, email]}\n"), 0o600))
	admin := free(t)
	notifier := newProc(t, "notifier", map[string]string{
		"NATS_URL": ns.URL(), "MONGO_URI": m.URI(), "MONGO_DATABASE": db.Name(),
		"NOTIFIER_ADMIN_ADDR": admin, "NOTIFIER_RULES_FILE": rules, "SLACK_WEBHOOK_URL": slack.URL,
		"SMTP_HOST": smtpHost, "SMTP_PORT": smtpPort, "SMTP_TLS": "none",
		"SMTP_FROM": "kiln@example.com", "SMTP_TO": "ops@example.com",
		"NOTIFIER_MAX_ATTEMPTS": "8", "NOTIFIER_BACKOFF_BASE": backoffBase, "NOTIFIER_BACKOFF_MAX": backoffMax,
		"NOTIFIER_ACK_WAIT": "2s", "NOTIFIER_SEND_TIMEOUT": "1s", "LOG_LEVEL": "warn",
	})
	js := ns.JetStream(t)
	startNotifier := func() {
		notifier.start()
		waitReady(t, "http://"+admin+"/healthz")
		require.Eventually(t, func() bool { // it evaluates events stored once its consumer exists
			_, err := js.Consumer(ctx, "EVENTS", "notifier")
			return err == nil
		}, time.Minute, 20*time.Millisecond, "the notifier's consumer never appeared")
	}

	slack.down.Store(true)
	smtpProxy.Cut()
	startNotifier()
	const alerts = 5
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range alerts {
		now := time.Now().UnixMilli()
		body := fmt.Sprintf(`{"id":"fault-order-%d","eventType":"order.created","userId":"u1","timestamp":%d,`+
			`"metadata":{"id":"o%d","status":"created","amount":%d,"currency":"EUR","customerEmail":"c@example.com","createdAt":%d}}`,
			i, now, i, 100+i, now)
		resp, err := client.Post("http://"+ingestAddr+"/events", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		answer, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", answer)
	}
	require.Eventually(t, func() bool { return slack.tried.Load() >= alerts }, time.Minute, 20*time.Millisecond,
		"every alert was tried on Slack while it was down")

	// The outage, with a crash of the notifier in its middle.
	notifier.kill()
	time.Sleep(down / 2) // the fault's duration, not a synchronisation
	startNotifier()
	time.Sleep(down / 2)
	slack.down.Store(false)
	smtpProxy.Restore()
	back := time.Now()

	store := readmodel.NewAlerts(db)
	var why string
	require.Eventually(t, func() bool {
		list, err := store.List(ctx, readmodel.AlertFilter{Limit: 1000})
		if err != nil {
			why = err.Error()
			return false
		}
		sent := 0
		for _, a := range list {
			if a.Status == readmodel.DeliverySent {
				sent++
			}
		}
		why = fmt.Sprintf("%d alerts, %d sent, slack %d, email %d", len(list), sent, slack.delivered.Load(), sink.messages.Load())
		return len(list) == alerts && sent == alerts && slack.delivered.Load() >= alerts && sink.messages.Load() >= alerts
	}, settleWithin, 100*time.Millisecond, "not every alert was delivered after the outage: %s", why)
	recovery := time.Since(back)
	// Settled: every event evaluated and every delivery job acked, so the
	// counts below no longer change; and nothing in the dead-letter stream.
	idle := func(stream, durable string) bool {
		ok, err := testsupport.ConsumerSettled(ctx, js, stream, durable)
		return err == nil && ok
	}
	require.Eventually(t, func() bool {
		return idle("EVENTS", "notifier") && idle("ALERTS", "notifier-deliver-slack") && idle("ALERTS", "notifier-deliver-email")
	}, settleWithin, 100*time.Millisecond, "the notifier never settled")
	if dlq, err := js.Stream(ctx, "ALERTS_DLQ"); err == nil {
		info, err := dlq.Info(ctx)
		require.NoError(t, err)
		require.Zero(t, info.State.Msgs, "alerts in the dead-letter stream")
	}
	require.EqualValues(t, alerts, slack.delivered.Load(), "once each on Slack")
	require.EqualValues(t, alerts, sink.messages.Load(), "once each by email")
	line := fmt.Sprintf(`{"fault":"Slack and SMTP down %s, notifier kill -9 during it","alerts":%d,"slack":%d,"email":%d,"dead":0,"recovery_s":%.1f}`,
		down, alerts, slack.delivered.Load(), sink.messages.Load(), recovery.Seconds())
	fmt.Println(line)
	t.Log(line)
}
