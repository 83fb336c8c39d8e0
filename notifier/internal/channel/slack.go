package channel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kilnhq/kiln/readmodel"
)

// SlackChannel posts alerts to a Slack incoming webhook.
type SlackChannel struct {
	webhook string // a secret: it is the credential
	client  *http.Client
}

// NewSlack returns a channel posting to webhookURL, each request bounded by
// timeout.
func NewSlack(webhookURL string, timeout time.Duration) (*SlackChannel, error) {
	u, err := url.Parse(webhookURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("SLACK_WEBHOOK_URL must be an http(s) URL") // the URL itself is secret
	}
	return &SlackChannel{webhook: webhookURL, client: &http.Client{Timeout: timeout}}, nil
}

// slackMessage is the webhook payload: text (the notification and
// fallback) and blocks (the rendered message).
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// SlackPayload renders an alert as a webhook payload.
func SlackPayload(a readmodel.Alert) ([]byte, error) {
	info := fmt.Sprintf("rule *%s* · %s · user %s · alert `%s`", escape(a.Rule), escape(a.EventType), escape(a.UserID), a.ID)
	if a.Kind == "threshold" {
		info += fmt.Sprintf(" · %d events in window from <!date^%d^{date_short_pretty} {time_secs}|%s>",
			a.Count, a.WindowStart/1000, time.UnixMilli(a.WindowStart).UTC().Format(time.RFC3339))
	}
	text := escape(a.Message)
	return json.Marshal(slackMessage{
		Text: truncate(text, maxText),
		Blocks: []slackBlock{
			{Type: "section", Text: &slackText{Type: "mrkdwn", Text: truncate(text, maxSectionText)}},
			{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: info}}},
		},
	})
}

// Slack's limits: longer text is refused with a 400.
const (
	maxText        = 40_000
	maxSectionText = 3000
)

// truncate shortens s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// escape applies Slack's three mrkdwn escapes.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Send posts the alert. 2xx is delivered; 429 is a RetryAfterError with
// Slack's Retry-After; 5xx, 408 and network errors are transient; any
// other answer (a revoked or mistyped webhook) is permanent.
func (s *SlackChannel) Send(ctx context.Context, a readmodel.Alert) error {
	body, err := SlackPayload(a)
	if err != nil {
		return Permanent(fmt.Errorf("slack payload: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.webhook, bytes.NewReader(body))
	if err != nil {
		return Permanent(errors.New("slack: cannot build request"))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error would print the webhook URL, a secret
		}
		return fmt.Errorf("slack webhook: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusTooManyRequests:
		return &RetryAfterError{Delay: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
			Err: fmt.Errorf("slack webhook answered 429 %s", strings.TrimSpace(string(answer)))}
	case code >= 500 || code == http.StatusRequestTimeout:
		return fmt.Errorf("slack webhook answered %d %s", code, strings.TrimSpace(string(answer)))
	default:
		return Permanent(fmt.Errorf("slack webhook answered %d %s", code, strings.TrimSpace(string(answer))))
	}
}

// retryAfter parses a Retry-After header (seconds or an HTTP date); a
// missing or unreadable one means one second.
func retryAfter(h string, now time.Time) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return time.Second
}
