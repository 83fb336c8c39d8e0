package notifier

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/kilnhq/kiln/notifier/internal/decide"
	"github.com/kilnhq/kiln/notifier/internal/delivery"
	"github.com/kilnhq/kiln/notifier/internal/jobs"
	"github.com/kilnhq/kiln/notifier/slacktest"
	"github.com/kilnhq/kiln/notifier/smtptest"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// testEnv is one set of real servers — NATS with the EVENTS stream,
// FerretDB, an HTTP server standing in for Slack, an SMTP server — and a
// notifier configuration pointing at them.
type testEnv struct {
	nats  *testsupport.NATS
	js    jetstream.JetStream
	db    *mongo.Database
	slack *slacktest.Server
	smtp  *smtptest.Server
	cfg   Config
	reg   *prometheus.Registry // of the latest started service
}

// newEnv starts the servers; rulesYAML becomes NOTIFIER_RULES_FILE and env
// overrides the test defaults (3 attempts, 20ms–100ms backoff, 2s ack wait).
func newEnv(t *testing.T, rulesYAML string, env map[string]string) *testEnv {
	t.Helper()
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	_, err := schemas.EnsureStream(context.Background(), js, schemas.StreamOptions{})
	require.NoError(t, err)
	e := &testEnv{nats: ns, js: js, db: testsupport.StartMongo(t).Database(t),
		slack: slacktest.Start(t), smtp: smtptest.Start(t, smtptest.Options{})}
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(rulesFile, []byte(rulesYAML), 0o600))
	vars := map[string]string{
		"NOTIFIER_RULES_FILE": rulesFile, "SLACK_WEBHOOK_URL": e.slack.URL,
		"SMTP_HOST": e.smtp.Host, "SMTP_PORT": strconv.Itoa(e.smtp.Port), "SMTP_TLS": "none",
		"SMTP_FROM": "kiln@example.com", "SMTP_TO": "ops@example.com",
		"NOTIFIER_MAX_ATTEMPTS": "3", "NOTIFIER_BACKOFF_BASE": "20ms", "NOTIFIER_BACKOFF_MAX": "100ms",
		"NOTIFIER_ACK_WAIT": "2s", "NOTIFIER_SEND_TIMEOUT": "1s",
	}
	for k, v := range env {
		vars[k] = v
	}
	e.cfg, err = LoadConfig(vars)
	require.NoError(t, err)
	return e
}

// start runs a notifier until stop (or the test's end). crash, when set,
// is consulted at each crash point: returning true kills the service
// there, as a crash would — nothing after that point happens.
func (e *testEnv) start(t *testing.T, crash func(point, id string) bool) (stop func()) {
	t.Helper()
	e.reg = prometheus.NewRegistry()
	svc, err := New(context.Background(), e.cfg, Deps{
		JetStream: e.js, Mongo: e.db, Metrics: e.reg, Log: testsupport.Logger(t),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if crash != nil {
		svc.crash = func(point, id string) bool {
			if crash(point, id) {
				cancel()
				return true
			}
			return false
		}
	}
	stop = testsupport.Run(t, ctx, svc.Run)
	// The consumer starts at events stored after it exists.
	require.Eventually(t, e.consumerReady, 2*time.Minute, 10*time.Millisecond)
	return stop
}

// consumerReady reports whether the notifier's event consumer exists.
func (e *testEnv) consumerReady() bool {
	_, err := e.js.Consumer(context.Background(), schemas.StreamName, decide.Durable)
	return err == nil
}

// event builds an event; ts is Unix ms.
func event(id, typ, user string, ts int64, meta string) schemas.Event {
	if meta == "" {
		meta = "{}"
	}
	return schemas.Event{ID: id, EventType: typ, UserID: user, Timestamp: ts, ReceivedAt: ts, Metadata: json.RawMessage(meta)}
}

// publish stores events as ingest does (Nats-Msg-Id = event id).
func (e *testEnv) publish(t *testing.T, events ...schemas.Event) {
	t.Helper()
	for _, ev := range events {
		e.publishAs(t, ev, ev.ID)
	}
}

func (e *testEnv) publishAs(t *testing.T, ev schemas.Event, msgID string) {
	t.Helper()
	data, err := json.Marshal(ev)
	require.NoError(t, err)
	msg := nats.NewMsg(schemas.Subject(ev.EventType))
	msg.Data = data
	msg.Header.Set(schemas.HeaderMsgID, msgID)
	_, err = e.js.PublishMsg(context.Background(), msg)
	require.NoError(t, err)
}

// settle waits until every event was evaluated and acked and every
// delivery job is settled (sent, dead, or skipped): after it, counts no
// longer change.
func (e *testEnv) settle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	idle := func(stream, durable string) bool {
		if _, err := e.js.Consumer(ctx, stream, durable); err == jetstream.ErrConsumerNotFound {
			return true
		}
		ok, err := testsupport.ConsumerSettled(ctx, e.js, stream, durable)
		return err == nil && ok
	}
	require.Eventually(t, func() bool {
		if !idle(schemas.StreamName, decide.Durable) {
			return false
		}
		for _, ch := range e.cfg.Channels() {
			if !idle(jobs.Stream, delivery.Durable(ch)) {
				return false
			}
		}
		return true
	}, 2*time.Minute, 20*time.Millisecond, "the notifier never settled")
}

// alerts lists the stored alerts as the gateway reads them.
func (e *testEnv) alerts(t *testing.T) []readmodel.Alert {
	t.Helper()
	list, err := readmodel.NewAlerts(e.db).List(context.Background(), readmodel.AlertFilter{Limit: 1000})
	require.NoError(t, err)
	return list
}

// metric reads a counter of the latest started service.
func (e *testEnv) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	families, err := e.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// minute is the start of a recent minute, for threshold windows.
func minute(ago int) int64 {
	return time.Now().Truncate(time.Minute).Add(-time.Duration(ago) * time.Minute).UnixMilli()
}
