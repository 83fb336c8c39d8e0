package channel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/kilnhq/kiln/readmodel"
)

// SMTP TLS modes (SMTP_TLS).
const (
	TLSStartTLSRequired      = "starttls-required"      // STARTTLS or fail
	TLSStartTLSOpportunistic = "starttls-opportunistic" // STARTTLS when offered
	TLSImplicit              = "tls"                    // TLS from the first byte (SMTPS, port 465)
	TLSNone                  = "none"                   // plaintext, e.g. a local mail catcher
)

// EmailConfig configures the SMTP channel.
type EmailConfig struct {
	Host     string
	Port     int
	Username string
	Password string // a secret
	// Auth is the SASL mechanism (plain, login, cram-md5, scram-sha-1,
	// scram-sha-256[-plus], xoauth2, ntlm, autodiscover, none; go-mail's
	// names); empty means autodiscover when Username is set, no
	// authentication otherwise.
	Auth    string
	From    string
	To      []string
	TLS     string      // one of the TLS* modes
	TLSConf *tls.Config // optional: custom roots (tests); nil verifies against the system roots
	Timeout time.Duration
}

// Validate reports the first invalid setting, naming its env var.
func (c EmailConfig) Validate() error {
	switch {
	case c.Host == "":
		return errors.New("SMTP_HOST must be set")
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("SMTP_PORT must be a TCP port, got %d", c.Port)
	case c.TLS != TLSStartTLSRequired && c.TLS != TLSStartTLSOpportunistic && c.TLS != TLSImplicit && c.TLS != TLSNone:
		return fmt.Errorf("SMTP_TLS must be %s, %s, %s or %s, got %q", TLSStartTLSRequired, TLSStartTLSOpportunistic, TLSImplicit, TLSNone, c.TLS)
	case c.Password != "" && c.Username == "":
		return errors.New("SMTP_PASSWORD is set but SMTP_USERNAME is not")
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("SMTP_FROM must be an email address: %w", err)
	}
	if len(c.To) == 0 {
		return errors.New("SMTP_TO must list at least one address")
	}
	for _, to := range c.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return fmt.Errorf("SMTP_TO: %q is not an email address: %w", to, err)
		}
	}
	if c.Auth != "" {
		var a gomail.SMTPAuthType
		if err := a.UnmarshalString(c.Auth); err != nil || a == gomail.SMTPAuthCustom {
			return fmt.Errorf("SMTP_AUTH: unknown mechanism %q", c.Auth)
		}
	}
	return nil
}

// EmailChannel sends alerts as plain-text mail through one SMTP server.
type EmailChannel struct {
	cfg  EmailConfig
	opts []gomail.Option
}

// NewEmail returns the SMTP channel for cfg.
func NewEmail(cfg EmailConfig) (*EmailChannel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := []gomail.Option{gomail.WithPort(cfg.Port), gomail.WithTimeout(cfg.Timeout)}
	switch cfg.TLS {
	case TLSStartTLSRequired:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSStartTLSOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if cfg.TLSConf != nil {
		opts = append(opts, gomail.WithTLSConfig(cfg.TLSConf))
	}
	if cfg.Username != "" {
		auth := gomail.SMTPAuthAutoDiscover
		if cfg.Auth != "" {
			_ = auth.UnmarshalString(cfg.Auth) // validated
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	return &EmailChannel{cfg: cfg, opts: opts}, nil
}

// Send mails the alert to every SMTP_TO address in one message. Its
// Message-ID derives from the alert id, so a copy re-sent after a crash
// is recognisably the same mail. A 5xx answer is permanent; anything else
// is retried.
func (e *EmailChannel) Send(ctx context.Context, a readmodel.Alert) error {
	m := gomail.NewMsg()
	if err := m.From(e.cfg.From); err != nil {
		return Permanent(fmt.Errorf("email from: %w", err))
	}
	if err := m.To(e.cfg.To...); err != nil {
		return Permanent(fmt.Errorf("email to: %w", err))
	}
	m.Subject(subject(a))
	m.SetMessageIDWithValue(a.ID + ".email@kiln")
	m.SetDate()
	m.SetGenHeader("X-Kiln-Alert-Id", a.ID)
	m.SetGenHeader("X-Kiln-Rule", a.Rule)
	m.SetBodyString(gomail.TypeTextPlain, emailBody(a))
	client, err := gomail.NewClient(e.cfg.Host, e.opts...)
	if err != nil {
		return Permanent(fmt.Errorf("email client: %w", err))
	}
	if err := client.DialAndSendWithContext(ctx, m); err != nil {
		if smtpCode(err) >= 500 {
			return Permanent(fmt.Errorf("smtp %s: %w", e.cfg.Host, err))
		}
		return fmt.Errorf("smtp %s: %w", e.cfg.Host, err)
	}
	return nil
}

// smtpCode is the SMTP reply code in err (0 when there is none): 5xx means
// the server refused for good (bad credentials, unknown mailbox).
func smtpCode(err error) int {
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() > 0 {
		return se.ErrorCode()
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func emailBody(a readmodel.Alert) string {
	var b strings.Builder
	b.WriteString(a.Message + "\n\n")
	fmt.Fprintf(&b, "Rule:       %s (%s)\n", a.Rule, a.Kind)
	fmt.Fprintf(&b, "Event:      %s %s (seq %d)\n", a.EventType, a.EventID, a.EventSeq)
	fmt.Fprintf(&b, "User:       %s\n", a.UserID)
	fmt.Fprintf(&b, "Event time: %s\n", time.UnixMilli(a.EventTimestamp).UTC().Format(time.RFC3339Nano))
	if a.Kind == "threshold" {
		fmt.Fprintf(&b, "Window:     %s – %s, group %q, %d events\n",
			time.UnixMilli(a.WindowStart).UTC().Format(time.RFC3339), time.UnixMilli(a.WindowEnd).UTC().Format(time.RFC3339), a.Group, a.Count)
	}
	fmt.Fprintf(&b, "Alert:      %s\n", a.ID)
	return b.String()
}
