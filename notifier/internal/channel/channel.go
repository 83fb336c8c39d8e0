// Package channel sends alerts: Slack incoming webhooks, email over SMTP,
// and the log. A channel reports how a failure should be retried: a
// RetryAfterError carries the delay the receiver asked for (Slack's 429
// Retry-After), a permanent error is not retried at all. Channel secrets
// (the webhook URL, the SMTP password) never appear in errors or logs.
package channel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kilnhq/kiln/readmodel"
)

// Channel names.
const (
	Slack = "slack"
	Email = "email"
	Log   = "log"
)

// Channel delivers an alert somewhere. Send must be safe for concurrent use.
type Channel interface {
	Send(ctx context.Context, a readmodel.Alert) error
}

// RetryAfterError is a failure whose receiver said when to try again.
type RetryAfterError struct {
	Delay time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.Delay)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// permanentError is a failure retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() + " (permanent)" }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error { return &permanentError{err: err} }

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// RetryAfter returns the delay a receiver asked for, if it did.
func RetryAfter(err error) (time.Duration, bool) {
	var r *RetryAfterError
	if errors.As(err, &r) {
		return r.Delay, true
	}
	return 0, false
}

// LogChannel writes alerts to the service log: what would be sent, for
// standalone mode and for trying rules out.
type LogChannel struct{ log *slog.Logger }

// NewLog returns the log channel.
func NewLog(log *slog.Logger) *LogChannel { return &LogChannel{log: log} }

// Send logs the alert at INFO.
func (l *LogChannel) Send(ctx context.Context, a readmodel.Alert) error {
	l.log.InfoContext(ctx, "alert", "channel", Log, "rule", a.Rule, "alertId", a.ID,
		"eventId", a.EventID, "eventType", a.EventType, "userId", a.UserID, "message", a.Message)
	return nil
}

// subject is a one-line title for an alert: its rule and the first line of
// its message, shortened.
func subject(a readmodel.Alert) string {
	line := a.Message
	for i, r := range line {
		if r == '\n' {
			line = line[:i]
			break
		}
	}
	if r := []rune(line); len(r) > 120 {
		line = string(r[:119]) + "…"
	}
	return "[Kiln] " + a.Rule + ": " + line
}
