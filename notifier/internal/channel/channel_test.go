package channel_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/notifier/internal/channel"
	"github.com/kilnhq/kiln/notifier/slacktest"
	"github.com/kilnhq/kiln/notifier/smtptest"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/testsupport"
)

var alert = readmodel.Alert{
	ID: "0123456789abcdef0123456789abcdef", Rule: "big-order", Kind: "each",
	Message: "Order o-1 of 1500 <EUR> & more", EventID: "e1", EventType: "order.created", UserID: "u1",
	EventTimestamp: 1_700_000_000_000, Channels: []string{"slack", "email"},
}

func TestSlack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	hook := slacktest.Start(t)
	slack, err := channel.NewSlack(hook.URL, 5*time.Second)
	require.NoError(t, err)

	require.NoError(t, slack.Send(ctx, alert))
	got := hook.Delivered()
	require.Len(t, got, 1)
	require.Equal(t, "Order o-1 of 1500 &lt;EUR&gt; &amp; more", got[0].Text, "mrkdwn escapes")
	require.Len(t, got[0].Blocks, 2)
	require.Contains(t, string(got[0].Blocks[1]), "rule *big-order*")

	for _, tc := range []struct {
		name      string
		answer    slacktest.Answer
		permanent bool
		retry     time.Duration
	}{
		{"429 honours Retry-After", slacktest.Answer{Status: 429, RetryAfter: 7 * time.Second}, false, 7 * time.Second},
		{"429 without Retry-After waits a second", slacktest.Answer{Status: 429}, false, time.Second},
		{"500 is transient", slacktest.Answer{Status: 500}, false, 0},
		{"503 is transient", slacktest.Answer{Status: 503}, false, 0},
		{"404 is permanent", slacktest.Answer{Status: 404}, true, 0},
		{"403 is permanent", slacktest.Answer{Status: 403}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hook.Script(tc.answer)
			err := slack.Send(ctx, alert)
			require.Error(t, err)
			require.Equal(t, tc.permanent, channel.IsPermanent(err), "%v", err)
			d, ok := channel.RetryAfter(err)
			require.Equal(t, tc.retry > 0, ok)
			require.Equal(t, tc.retry, d)
			require.NotContains(t, err.Error(), "secret-token")
		})
	}

	// A network failure names neither the URL nor its token.
	down, err := channel.NewSlack("http://127.0.0.1:1/services/T/B/secret-token", time.Second)
	require.NoError(t, err)
	err = down.Send(ctx, alert)
	require.Error(t, err)
	require.False(t, channel.IsPermanent(err))
	require.NotContains(t, err.Error(), "secret-token")

	long := alert
	long.Message = strings.Repeat("é", 5000)
	body, err := channel.SlackPayload(long)
	require.NoError(t, err)
	var p struct {
		Blocks []struct {
			Text struct{ Text string } `json:"text"`
		} `json:"blocks"`
	}
	require.NoError(t, json.Unmarshal(body, &p))
	require.Len(t, []rune(p.Blocks[0].Text.Text), 3000, "Slack refuses longer sections")

	_, err = channel.NewSlack("not a url with secret-token", time.Second)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "secret-token")
}

func TestEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		srv  smtptest.Options
		cfg  channel.EmailConfig
	}{
		{"plaintext to a mail catcher", smtptest.Options{}, channel.EmailConfig{TLS: channel.TLSNone}},
		{"starttls required with auth", smtptest.Options{TLS: true, Username: "kiln", Password: "pw-secret"},
			channel.EmailConfig{TLS: channel.TLSStartTLSRequired, Username: "kiln", Password: "pw-secret"}},
		{"starttls opportunistic with plain auth", smtptest.Options{TLS: true, Username: "kiln", Password: "pw-secret"},
			channel.EmailConfig{TLS: channel.TLSStartTLSOpportunistic, Username: "kiln", Password: "pw-secret", Auth: "plain"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, tc.srv)
			cfg := tc.cfg
			cfg.Host, cfg.Port, cfg.TLSConf, cfg.Timeout = srv.Host, srv.Port, srv.ClientTLS, 5*time.Second
			cfg.From, cfg.To = "kiln@example.com", []string{"ops@example.com", "oncall@example.com"}
			email, err := channel.NewEmail(cfg)
			require.NoError(t, err)
			require.NoError(t, email.Send(ctx, alert))
			msgs := srv.Messages()
			require.Len(t, msgs, 1)
			m := msgs[0]
			require.Equal(t, "kiln@example.com", m.From)
			require.Equal(t, []string{"ops@example.com", "oncall@example.com"}, m.To)
			require.Equal(t, "[Kiln] big-order: Order o-1 of 1500 <EUR> & more", m.Subject)
			require.Equal(t, "<"+alert.ID+".email@kiln>", m.ID)
			require.Contains(t, m.Body, "Rule:       big-order (each)")
			require.Equal(t, tc.srv.TLS, m.TLS)
			require.Equal(t, tc.srv.Username, m.User)
		})
	}

	t.Run("starttls required but not offered", func(t *testing.T) {
		t.Parallel()
		srv := smtptest.Start(t, smtptest.Options{})
		email, err := channel.NewEmail(channel.EmailConfig{Host: srv.Host, Port: srv.Port, TLS: channel.TLSStartTLSRequired,
			From: "kiln@example.com", To: []string{"ops@example.com"}, Timeout: 5 * time.Second})
		require.NoError(t, err)
		require.Error(t, email.Send(ctx, alert))
		require.Empty(t, srv.Messages())
	})
	t.Run("wrong password is permanent and not echoed", func(t *testing.T) {
		t.Parallel()
		srv := smtptest.Start(t, smtptest.Options{TLS: true, Username: "kiln", Password: "right"})
		email, err := channel.NewEmail(channel.EmailConfig{Host: srv.Host, Port: srv.Port, TLS: channel.TLSStartTLSRequired,
			TLSConf: srv.ClientTLS, Username: "kiln", Password: "wrong-secret", Auth: "plain",
			From: "kiln@example.com", To: []string{"ops@example.com"}, Timeout: 5 * time.Second})
		require.NoError(t, err)
		err = email.Send(ctx, alert)
		require.Error(t, err)
		require.NotContains(t, err.Error(), "wrong-secret")
		require.True(t, channel.IsPermanent(err), "%v", err)
		require.Empty(t, srv.Messages())
	})
	t.Run("server down is transient", func(t *testing.T) {
		t.Parallel()
		email, err := channel.NewEmail(channel.EmailConfig{Host: "127.0.0.1", Port: testsupport.FreePort(t), TLS: channel.TLSNone,
			From: "kiln@example.com", To: []string{"ops@example.com"}, Timeout: 2 * time.Second})
		require.NoError(t, err)
		err = email.Send(ctx, alert)
		require.Error(t, err)
		require.False(t, channel.IsPermanent(err))
	})
}

func TestEmailConfigValidate(t *testing.T) {
	t.Parallel()
	ok := channel.EmailConfig{Host: "smtp", Port: 587, TLS: channel.TLSStartTLSRequired, From: "a@b.c", To: []string{"d@e.f"}}
	require.NoError(t, ok.Validate())
	for _, tc := range []struct {
		edit func(*channel.EmailConfig)
		want string
	}{
		{func(c *channel.EmailConfig) { c.Host = "" }, "SMTP_HOST"},
		{func(c *channel.EmailConfig) { c.Port = 0 }, "SMTP_PORT"},
		{func(c *channel.EmailConfig) { c.TLS = "maybe" }, "SMTP_TLS"},
		{func(c *channel.EmailConfig) { c.From = "nobody" }, "SMTP_FROM"},
		{func(c *channel.EmailConfig) { c.To = nil }, "SMTP_TO"},
		{func(c *channel.EmailConfig) { c.To = []string{"x"} }, "SMTP_TO"},
		{func(c *channel.EmailConfig) { c.Password = "p" }, "SMTP_USERNAME"},
		{func(c *channel.EmailConfig) { c.Auth = "magic" }, "SMTP_AUTH"},
		{func(c *channel.EmailConfig) { c.Auth = "custom" }, "SMTP_AUTH"},
	} {
		c := ok
		tc.edit(&c)
		require.ErrorContains(t, c.Validate(), tc.want)
	}
}

func TestLog(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := channel.NewLog(slog.New(slog.NewTextHandler(&buf, nil)))
	require.NoError(t, l.Send(context.Background(), alert))
	require.True(t, strings.Contains(buf.String(), "rule=big-order"), buf.String())
	require.Contains(t, buf.String(), `message="Order o-1 of 1500 <EUR> & more"`)
}
