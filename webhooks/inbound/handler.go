package inbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/schemas/problem"
	"github.com/kilnhq/kiln/webhooks/signature"
)

// Appender appends one event (a POST /events object) through ingest's
// durable, idempotent path. It returns nil once the event is stored (or was
// before, under the same id) or quarantined (its type's schema refused it
// under enforcement quarantine: kept in the REJECTIONS stream, not stored;
// quarantined is then true), else a *problem.Details: 400 for an invalid
// event, 503 when the store did not confirm. provider names the verified
// sender (its secret is the credential), for the records of refused events.
type Appender interface {
	AppendEvent(ctx context.Context, provider string, event []byte) (quarantined bool, err error)
}

// UnmappedRecorder is implemented by an Appender that also keeps, as sent,
// a verified payload that is not an event (not JSON, not an object, no
// type): the 400 problem p says why.
type UnmappedRecorder interface {
	RecordUnmapped(provider string, body []byte, p *problem.Details)
}

// Handler serves POST /webhooks/:provider.
type Handler struct {
	providers map[string]*Provider
	legacy    string
	tolerance time.Duration
	appender  Appender
	now       func() time.Time
	log       *slog.Logger
}

// NewHandler loads the providers of cfg (already validated).
func NewHandler(cfg Config, appender Appender, log *slog.Logger) (*Handler, error) {
	providers := map[string]*Provider{}
	if cfg.ProvidersFile != "" {
		var err error
		if providers, err = LoadProviders(cfg.ProvidersFile); err != nil {
			return nil, err
		}
	}
	return &Handler{providers: providers, legacy: cfg.LegacySecret, tolerance: cfg.Tolerance,
		appender: appender, now: time.Now, log: log}, nil
}

// Register mounts the route on r.
func (h *Handler) Register(r fiber.Router) { r.Post("/webhooks/:provider", h.Serve) }

var (
	accepted = []byte(`{"status":"accepted"}`)
	// quarantined keeps the old senders' "status" and adds what POST
	// /events says of such an event.
	quarantined = []byte(`{"status":"accepted","quarantined":true}`)
)

// QuarantinedHeader is the response header ("true") of a webhook whose
// event was quarantined; the JSON answer says "quarantined":true too.
const QuarantinedHeader = "Kiln-Quarantined"

// Serve verifies, maps and appends one webhook.
func (h *Handler) Serve(c *fiber.Ctx) error {
	name := c.Params("provider")
	p := h.provider(name)
	if p == nil {
		return problem.New(http.StatusNotFound, "unknown-provider", "Unknown webhook provider",
			"no webhook provider of this name is configured")
	}
	// Decoded within the body limit before anything else: the signature
	// covers the decoded body, and an unauthenticated bomb stops here.
	body, err := httpserver.Body(c)
	if err != nil {
		return err
	}
	id, ts, err := h.verify(p, c, body)
	if err != nil {
		c.Set(fiber.HeaderWWWAuthenticate, `HMAC realm="kiln-webhooks"`)
		return problem.New(http.StatusUnauthorized, "bad-signature", "Webhook signature not verified", err.Error())
	}
	event, perr := Map(p, id, ts, body)
	if perr != nil {
		if r, ok := h.appender.(UnmappedRecorder); ok {
			r.RecordUnmapped(p.Name, body, perr)
		}
		return perr
	}
	kept, err := h.appender.AppendEvent(context.WithoutCancel(c.UserContext()), p.Name, event)
	if err != nil {
		var pd *problem.Details
		if errors.As(err, &pd) {
			return pd
		}
		return err
	}
	c.Status(http.StatusAccepted).Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	if kept {
		c.Set(QuarantinedHeader, "true")
		return c.Send(quarantined)
	}
	return c.Send(accepted)
}

// provider returns the named provider: from the file, or, when
// WEBHOOK_SECRET is set, an old-scheme provider with that secret.
func (h *Handler) provider(name string) *Provider {
	if p := h.providers[name]; p != nil {
		return p
	}
	if h.legacy == "" || !providerName.MatchString(name) {
		return nil
	}
	p := &Provider{Name: name, LegacySecrets: []string{h.legacy}}
	p.Mapping.setDefaults()
	return p
}

// verify checks the request with the scheme its headers use and returns
// the event id it stands for (stable across deliveries of the webhook) and
// its timestamp.
func (h *Handler) verify(p *Provider, c *fiber.Ctx, body []byte) (string, time.Time, error) {
	now := h.now()
	if sig := c.Get("webhook-signature"); sig != "" || len(p.LegacySecrets) == 0 {
		if len(p.Secrets) == 0 {
			return "", time.Time{}, errors.New("this provider does not use Standard Webhooks signatures; send X-Signature and X-Timestamp")
		}
		hdr := signature.Headers{ID: c.Get("webhook-id"), Timestamp: c.Get("webhook-timestamp"), Signature: sig}
		ts, err := signature.Verify(p.Secrets, hdr, body, now, h.tolerance)
		return eventID(p.Name, "id", hdr.ID), ts, err
	}
	sig := c.Get(signature.LegacySignatureHeader)
	ts, err := signature.LegacyVerify(p.LegacySecrets, p.Name, sig, c.Get(signature.LegacyTimestampHeader), body, now, h.tolerance)
	if err != nil {
		return "", ts, err
	}
	// The id comes from the verified MAC, not from how its hex was
	// spelled: upper-case hex verifies too, and a replay so spelled must
	// be the same event. Lower-case hex keeps the ids of the old senders'
	// webhooks what they were.
	mac, err := hex.DecodeString(sig)
	if err != nil {
		return "", ts, err // not reached: LegacyVerify decoded it
	}
	return eventID(p.Name, "sig", hex.EncodeToString(mac)), ts, nil
}

// eventID derives the event id from what identifies a webhook: the
// webhook-id, or for the old scheme the MAC (which covers the timestamp
// and body) in lower-case hex. The same webhook delivered twice is the same event,
// which ingest's idempotency stores once.
func eventID(provider, kind, key string) string {
	sum := sha256.Sum256([]byte(provider + "\x00" + kind + "\x00" + key))
	return "wh_" + provider + "_" + hex.EncodeToString(sum[:16])
}

// timestampMillis is the event timestamp of a webhook.
func timestampMillis(ts time.Time) string { return strconv.FormatInt(ts.UnixMilli(), 10) }
