package notifier

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/testsupport"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(map[string]string{})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9104", cfg.AdminAddr)
	require.Equal(t, 10, cfg.MaxAttempts)
	require.Equal(t, time.Second, cfg.BackoffBase)
	require.Equal(t, 5*time.Minute, cfg.BackoffMax)
	require.Equal(t, []string{"log"}, cfg.Channels(), "Slack and email are off unless configured")

	cfg, err = LoadConfig(map[string]string{
		"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/hush", "SMTP_HOST": "mail", "SMTP_FROM": "kiln@example.com",
		"SMTP_TO": "a@example.com, b@example.com", "SMTP_USERNAME": "kiln", "SMTP_PASSWORD": "pw-hush",
	})
	require.NoError(t, err)
	require.Equal(t, []string{"log", "slack", "email"}, cfg.Channels())
	require.Equal(t, []string{"a@example.com", "b@example.com"}, cfg.email().To, "spaces around commas are fine")
	require.Equal(t, 587, cfg.SMTPPort)
	require.Equal(t, "starttls-required", cfg.SMTPTLS)

	// Secrets never print, whether formatted or logged.
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", cfg, "password", cfg.SMTPPassword)
	for _, out := range []string{fmt.Sprintf("%v %+v", cfg, cfg), logged.String()} {
		require.NotContains(t, out, "hush")
		require.Contains(t, out, "[redacted]")
	}
	require.Equal(t, "pw-hush", cfg.SMTPPassword.Reveal())

	for env, want := range map[string]string{
		"NOTIFIER_MAX_ATTEMPTS=0":                            "NOTIFIER_MAX_ATTEMPTS",
		"NOTIFIER_BACKOFF_MAX=10ms":                          "NOTIFIER_BACKOFF_MAX",
		"NOTIFIER_ACK_WAIT=5s":                               "NOTIFIER_ACK_WAIT",
		"NOTIFIER_DELIVERY_CONCURRENCY=0":                    "NOTIFIER_DELIVERY_CONCURRENCY",
		"SMTP_HOST=mail":                                     "SMTP_FROM",
		"NOTIFIER_BACKOFF_BASE=soon":                         "NOTIFIER_BACKOFF_BASE",
		"STREAM_REPLICAS=7":                                  "STREAM_REPLICAS",
		"NOTIFIER_SEND_TIMEOUT=1ms":                          "NOTIFIER_SEND_TIMEOUT",
		"SMTP_HOST=mail;SMTP_FROM=a@b.c;SMTP_TO=x;SMTP_TLS=": "SMTP_TO",
	} {
		vars := map[string]string{}
		for _, kv := range strings.Split(env, ";") {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = v
		}
		_, err := LoadConfig(vars)
		require.ErrorContains(t, err, want, env)
	}
}

// Standalone mode: the built-in example rules with only the log channel,
// which shows what would have been sent.
func TestExampleRulesLogWhatWouldBeSent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "unused", nil)
	cfg, err := LoadConfig(map[string]string{"NOTIFIER_BACKOFF_BASE": "10ms"})
	require.NoError(t, err)
	var logs testsupport.LogBuffer
	svc, err := New(context.Background(), cfg, Deps{JetStream: e.js, Mongo: e.db, Metrics: prometheus.NewRegistry(),
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	e.cfg, e.reg = cfg, prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	require.Contains(t, logs.String(), `rules="[payment-failed-burst big-order order-canceled-fraud]"`)
	require.Eventually(t, e.consumerReady,
		2*time.Minute, 10*time.Millisecond)

	e.publish(t, event("o1", "order.created", "u1", time.Now().UnixMilli(), `{"id":"o-1","amount":1500,"currency":"EUR"}`))
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), `msg=alert channel=log rule=big-order`)
	}, 2*time.Minute, 20*time.Millisecond)
	require.Contains(t, logs.String(), `message=":moneybag: Order o-1 of 1500 EUR by u1"`)
	e.settle(t)
	alerts := e.alerts(t)
	require.Len(t, alerts, 1)
	require.Equal(t, []string{"log"}, alerts[0].Channels)
	require.Equal(t, "sent", alerts[0].Status)
}
