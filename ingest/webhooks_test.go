package ingest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/schemas"
)

const (
	legacySecret = "s3cret-value"
	// Two Standard Webhooks secrets of the "shop" provider (a rotation).
	shopSecretOld = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	shopSecretNew = "whsec_c2Vjb25kLXNlY3JldC1rZXktb2YtMzItYnl0ZXMhIQ=="
	orderPayload  = `{"type":"order.created","data":{"id":"o-1","status":"created","amount":42.5,"currency":"EUR","customerEmail":"ann@example.com","createdAt":"2026-12-01T20:00:00.000Z"}}`
)

// webhookHarness runs ingest with WEBHOOK_SECRET and a providers file.
func webhookHarness(t *testing.T) *harness {
	t.Helper()
	file := filepath.Join(t.TempDir(), "providers.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`providers:
  shop:
    secrets: ["`+shopSecretOld+`", "`+shopSecretNew+`"]
  both:
    secrets: ["`+shopSecretNew+`"]
    legacySecrets: ["other-secret"]
`), 0o600))
	return newHarness(t, func(c *ingest.Config) {
		c.Webhooks.LegacySecret = legacySecret
		c.Webhooks.ProvidersFile = file
	})
}

func (h *harness) webhook(t *testing.T, provider, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+"/webhooks/"+provider, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return h.do(t, req)
}

// nodeSignature signs as the old Node senders do; it uses node when the
// machine has it, else the same computation in Go.
func nodeSignature(t *testing.T, secret, provider, ts, body string) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err == nil {
		script := `const c=require('crypto');const [s,p,ts,b]=process.argv.slice(1);` +
			`process.stdout.write(c.createHmac('sha256', s + ':' + p).update(ts + JSON.stringify(JSON.parse(b))).digest('hex'))`
		out, err := exec.Command("node", "-e", script, secret, provider, ts, body).Output()
		require.NoError(t, err)
		return string(out)
	}
	return legacySignature(secret, provider, ts, body)
}

// legacySignature is the old scheme's signature over body as it is.
func legacySignature(secret, provider, ts, body string) string {
	m := hmac.New(sha256.New, []byte(secret+":"+provider))
	m.Write([]byte(ts + body))
	return hex.EncodeToString(m.Sum(nil))
}

// standardSignature computes a webhook-signature entry from the
// specification: base64 HMAC-SHA256, keyed by the base64-decoded secret,
// over "<id>.<timestamp>.<body>".
func standardSignature(t *testing.T, secret, id, ts, body string) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + body))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func nowMillis() string  { return strconv.FormatInt(time.Now().UnixMilli(), 10) }
func nowSeconds() string { return strconv.FormatInt(time.Now().Unix(), 10) }

func TestWebhookOldSchemeSignedLikeNode(t *testing.T) {
	t.Parallel()
	h := webhookHarness(t)
	ts := nowMillis()
	sig := nodeSignature(t, legacySecret, "demo", ts, orderPayload)
	r := h.webhook(t, "demo", orderPayload, "X-Signature", sig, "X-Timestamp", ts)
	require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	require.Equal(t, map[string]any{"status": "accepted"}, r.body)

	require.Equal(t, uint64(1), h.count(t, "events.order.created"))
	ev := lastEvent(t, h, "events.order.created")
	require.Equal(t, "order.created", ev.EventType)
	require.Equal(t, "ann@example.com", ev.UserID, "userId from data.customerEmail")
	require.Equal(t, ts, strconv.FormatInt(ev.Timestamp, 10), "the webhook's timestamp")
	require.JSONEq(t, `{"id":"o-1","status":"created","amount":42.5,"currency":"EUR","customerEmail":"ann@example.com","createdAt":"2026-12-01T20:00:00.000Z"}`, string(ev.Metadata))

	// The same webhook again: accepted, stored once.
	r = h.webhook(t, "demo", orderPayload, "X-Signature", sig, "X-Timestamp", ts)
	require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	require.Equal(t, uint64(1), h.count(t, "events.order.created"))
}

func TestWebhookOldSchemeUserIDFallsBackToProvider(t *testing.T) {
	t.Parallel()
	h := webhookHarness(t)
	body := `{"type":"order.canceled","data":{"id":"o-2","status":"canceled","reason":"changed mind","createdAt":"2026-12-01T20:00:00Z"}}`
	ts := nowMillis()
	r := h.webhook(t, "legacy-shop", body, "X-Signature", nodeSignature(t, legacySecret, "legacy-shop", ts, body), "X-Timestamp", ts)
	require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	require.Equal(t, "legacy-shop", lastEvent(t, h, "events.order.canceled").UserID)
}

func TestWebhookStandardSignatureFromSpec(t *testing.T) {
	t.Parallel()
	h := webhookHarness(t)
	ts := nowSeconds()
	// Several entries, only the last valid: any valid one verifies.
	sig := "v1,bm90LWEtdmFsaWQtc2lnbmF0dXJl v2,abc " + standardSignature(t, shopSecretOld, "msg_1", ts, orderPayload)
	r := h.webhook(t, "shop", orderPayload, "webhook-id", "msg_1", "webhook-timestamp", ts, "webhook-signature", sig)
	require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	require.Equal(t, map[string]any{"status": "accepted"}, r.body)
	ev := lastEvent(t, h, "events.order.created")
	require.Equal(t, ts+"000", strconv.FormatInt(ev.Timestamp, 10))

	// Delivered again (a sender's retry signs anew with a later timestamp,
	// same webhook-id): stored once.
	ts2 := strconv.FormatInt(time.Now().Unix()+1, 10)
	r = h.webhook(t, "shop", orderPayload, "webhook-id", "msg_1", "webhook-timestamp", ts2,
		"webhook-signature", standardSignature(t, shopSecretOld, "msg_1", ts2, orderPayload))
	require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	require.Equal(t, uint64(1), h.count(t, "events.order.created"))
}

func TestWebhookRotationBothSecretsVerify(t *testing.T) {
	t.Parallel()
	h := webhookHarness(t)
	for i, secret := range []string{shopSecretOld, shopSecretNew} {
		id, ts := "msg_rot_"+strconv.Itoa(i), nowSeconds()
		r := h.webhook(t, "shop", orderPayload, "webhook-id", id, "webhook-timestamp", ts,
			"webhook-signature", standardSignature(t, secret, id, ts, orderPayload))
		require.Equal(t, http.StatusAccepted, r.status, "secret %d: %v", i, r.body)
	}
	require.Equal(t, uint64(2), h.count(t, "events.order.created"))
}

func TestWebhookRefusedSignatures(t *testing.T) {
	t.Parallel()
	h := webhookHarness(t)
	old := func(d time.Duration) string { return strconv.FormatInt(time.Now().Add(d).UnixMilli(), 10) }
	std := func(d time.Duration) string { return strconv.FormatInt(time.Now().Add(d).Unix(), 10) }
	flipped := strings.Replace(orderPayload, "42.5", "42.6", 1)
	var pretty strings.Builder
	var v any
	require.NoError(t, json.Unmarshal([]byte(orderPayload), &v))
	b, _ := json.MarshalIndent(v, "", "  ")
	pretty.Write(b)
	tests := []struct {
		name, provider, body string
		headers              []string
	}{
		{"old: one flipped byte", "demo", flipped, []string{"X-Signature", nodeSignature(t, legacySecret, "demo", old(0), orderPayload), "X-Timestamp", old(0)}},
		{"old: whitespace reformatted", "demo", pretty.String(), []string{"X-Signature", nodeSignature(t, legacySecret, "demo", old(0), orderPayload), "X-Timestamp", old(0)}},
		{"old: 6 min old", "demo", orderPayload, []string{"X-Signature", nodeSignature(t, legacySecret, "demo", old(-6*time.Minute), orderPayload), "X-Timestamp", old(-6 * time.Minute)}},
		{"old: 6 min ahead", "demo", orderPayload, []string{"X-Signature", nodeSignature(t, legacySecret, "demo", old(6*time.Minute), orderPayload), "X-Timestamp", old(6 * time.Minute)}},
		{"old: wrong secret", "demo", orderPayload, []string{"X-Signature", nodeSignature(t, "wrong", "demo", old(0), orderPayload), "X-Timestamp", old(0)}},
		{"old: other provider's signature", "demo", orderPayload, []string{"X-Signature", nodeSignature(t, legacySecret, "demo2", old(0), orderPayload), "X-Timestamp", old(0)}},
		{"old: missing signature", "demo", orderPayload, []string{"X-Timestamp", old(0)}},
		{"old: missing timestamp", "demo", orderPayload, []string{"X-Signature", nodeSignature(t, legacySecret, "demo", old(0), orderPayload)}},
		{"std: one flipped byte", "shop", flipped, []string{"webhook-id", "m", "webhook-timestamp", std(0), "webhook-signature", standardSignature(t, shopSecretOld, "m", std(0), orderPayload)}},
		{"std: whitespace reformatted", "shop", pretty.String(), []string{"webhook-id", "m", "webhook-timestamp", std(0), "webhook-signature", standardSignature(t, shopSecretOld, "m", std(0), orderPayload)}},
		{"std: 6 min old", "shop", orderPayload, []string{"webhook-id", "m", "webhook-timestamp", std(-6 * time.Minute), "webhook-signature", standardSignature(t, shopSecretOld, "m", std(-6*time.Minute), orderPayload)}},
		{"std: 6 min ahead", "shop", orderPayload, []string{"webhook-id", "m", "webhook-timestamp", std(6 * time.Minute), "webhook-signature", standardSignature(t, shopSecretOld, "m", std(6*time.Minute), orderPayload)}},
		{"std: wrong secret", "shop", orderPayload, []string{"webhook-id", "m", "webhook-timestamp", std(0), "webhook-signature", standardSignature(t, "whsec_d3Jvbmctc2VjcmV0LWtleS13cm9uZy1zZWNyZXQ=", "m", std(0), orderPayload)}},
		{"std: other webhook-id", "shop", orderPayload, []string{"webhook-id", "m2", "webhook-timestamp", std(0), "webhook-signature", standardSignature(t, shopSecretOld, "m", std(0), orderPayload)}},
		{"std: missing webhook-id", "shop", orderPayload, []string{"webhook-timestamp", std(0), "webhook-signature", standardSignature(t, shopSecretOld, "", std(0), orderPayload)}},
		{"std: missing signature", "shop", orderPayload, []string{"webhook-id", "m", "webhook-timestamp", std(0)}},
		{"std: old scheme for a Standard Webhooks provider", "shop", orderPayload, []string{"X-Signature", nodeSignature(t, legacySecret, "shop", old(0), orderPayload), "X-Timestamp", old(0)}},
		{"both: legacy signature with the wrong secret", "both", orderPayload, []string{"X-Signature", nodeSignature(t, legacySecret, "both", old(0), orderPayload), "X-Timestamp", old(0)}},
	}
	for _, tt := range tests {
		r := h.webhook(t, tt.provider, tt.body, tt.headers...)
		requireProblem(t, r, http.StatusUnauthorized)
		require.NotContains(t, r.body["detail"], "42.", tt.name+": no request bytes echoed")
	}
	require.Zero(t, h.count(t, "events.>"), "nothing stored")
}

func TestWebhookProviderWithBothSchemes(t *testing.T) {
	t.Parallel()
	h := webhookHarness(t)
	ts := nowMillis()
	r := h.webhook(t, "both", orderPayload, "X-Signature", nodeSignature(t, "other-secret", "both", ts, orderPayload), "X-Timestamp", ts)
	require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	sec := nowSeconds()
	r = h.webhook(t, "both", orderPayload, "webhook-id", "b1", "webhook-timestamp", sec,
		"webhook-signature", standardSignature(t, shopSecretNew, "b1", sec, orderPayload))
	require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	require.Equal(t, uint64(2), h.count(t, "events.order.created"))
}

func TestWebhookUnknownProviderAndInvalidPayloads(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil) // no WEBHOOK_SECRET: unlisted providers are unknown
	ts := nowMillis()
	r := h.webhook(t, "demo", orderPayload, "X-Signature", nodeSignature(t, legacySecret, "demo", ts, orderPayload), "X-Timestamp", ts)
	requireProblem(t, r, http.StatusNotFound)

	w := webhookHarness(t)
	for name, body := range map[string]string{
		"not json":         `{"type":`,
		"no type":          `{"data":{"id":"x"}}`,
		"data not object":  `{"type":"x.y","data":[1]}`,
		"fails its schema": `{"type":"order.created","data":{"id":"o-1","status":"created","currency":"EUR","customerEmail":"ann@example.com","createdAt":"2026-12-01T20:00:00Z"}}`,
		"bad event type":   `{"type":"has spaces","data":{}}`,
		"not an object":    `[1,2]`,
	} {
		ts := nowMillis()
		r := w.webhook(t, "demo", body, "X-Signature", legacySignature(legacySecret, "demo", ts, body), "X-Timestamp", ts)
		requireProblem(t, r, http.StatusBadRequest)
		require.NotEmpty(t, r.body["detail"], name)
	}
	require.Zero(t, w.count(t, "events.>"))
}

func TestWebhookNotDurableIs503(t *testing.T) {
	t.Parallel()
	h := webhookHarness(t)
	h.nats.Shutdown()
	ts := nowMillis()
	r := h.webhook(t, "demo", orderPayload, "X-Signature", nodeSignature(t, legacySecret, "demo", ts, orderPayload), "X-Timestamp", ts)
	requireProblem(t, r, http.StatusServiceUnavailable)
	require.NotEmpty(t, r.header.Get("Retry-After"))
}

// lastEvent reads the newest stored event on subject.
func lastEvent(t *testing.T, h *harness, subject string) schemas.Event {
	t.Helper()
	s, err := h.js.Stream(t.Context(), schemas.StreamName)
	require.NoError(t, err)
	msg, err := s.GetLastMsgForSubject(t.Context(), subject)
	require.NoError(t, err)
	var ev schemas.Event
	require.NoError(t, json.Unmarshal(msg.Data, &ev))
	return ev
}

// Issue 24: a webhook whose event its type's schema refuses under
// enforcement quarantine is answered 202 as before ("status":"accepted",
// what the old senders read) and says it was quarantined: the header
// Kiln-Quarantined and "quarantined":true. The event is kept in
// REJECTIONS under its webhook id, not stored.
func TestWebhookSaysQuarantined(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "providers.yaml")
	require.NoError(t, os.WriteFile(file, []byte("providers:\n  shop:\n    secrets: [\""+shopSecretOld+"\"]\n"), 0o600))
	h := newHarness(t, func(c *ingest.Config) {
		c.Webhooks.LegacySecret = legacySecret
		c.Webhooks.ProvidersFile = file
		c.Schemas.Enforcement = "quarantine"
	})
	bad := strings.Replace(orderPayload, "42.5", "-1", 1)

	ts := nowMillis()
	r := h.webhook(t, "demo", bad, "X-Signature", nodeSignature(t, legacySecret, "demo", ts, bad), "X-Timestamp", ts)
	require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	require.Equal(t, map[string]any{"status": "accepted", "quarantined": true}, r.body)
	require.Equal(t, "true", r.header.Get("Kiln-Quarantined"))

	sts := nowSeconds()
	r = h.webhook(t, "shop", bad, "webhook-id", "msg_q", "webhook-timestamp", sts,
		"webhook-signature", standardSignature(t, shopSecretOld, "msg_q", sts, bad))
	require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	require.Equal(t, map[string]any{"status": "accepted", "quarantined": true}, r.body)
	require.Equal(t, "true", r.header.Get("Kiln-Quarantined"))

	// A valid one: the answer the old senders always had, no header.
	ts = nowMillis()
	r = h.webhook(t, "demo", orderPayload, "X-Signature", nodeSignature(t, legacySecret, "demo", ts, orderPayload), "X-Timestamp", ts)
	require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	require.Equal(t, map[string]any{"status": "accepted"}, r.body)
	require.Empty(t, r.header.Get("Kiln-Quarantined"))

	require.Equal(t, uint64(1), h.count(t, "events.>"), "only the valid one stored")
	kept := h.quarantined(t)
	require.Len(t, kept, 2)
	for _, rec := range kept {
		require.Equal(t, "order.created", rec.EventType)
		require.True(t, strings.HasPrefix(rec.ID, "wh_"), rec.ID)
		require.True(t, rec.HasField("metadata.amount"), "%v", rec.Reasons)
	}
	require.ElementsMatch(t, []string{"webhook:demo", "webhook:shop"}, []string{kept[0].KeyID, kept[1].KeyID},
		"a record names the credential: the provider whose secret verified it")
}

// Issue 24: a verified webhook whose payload is not an event (not JSON,
// or no type) is answered 400 as before and kept in REJECTIONS as sent,
// not recoverable; an unverified one is not kept.
func TestWebhookUnmappedPayloadRecorded(t *testing.T) {
	t.Parallel()
	h := webhookHarness(t)
	for _, body := range []string{`{"type":"order.created",`, `{"data":{}}`} {
		ts := nowMillis()
		r := h.webhook(t, "demo", body, "X-Signature", legacySignature(legacySecret, "demo", ts, body), "X-Timestamp", ts)
		requireProblem(t, r, http.StatusBadRequest)
	}
	ts := nowMillis()
	r := h.webhook(t, "demo", `not signed`, "X-Signature", legacySignature("wrong", "demo", ts, `not signed`), "X-Timestamp", ts)
	requireProblem(t, r, http.StatusUnauthorized)

	recs := h.malformedRecords(t, 2)
	require.Len(t, recs, 2)
	require.Equal(t, `{"type":"order.created",`, string(recs[0].Body))
	require.Contains(t, recs[0].Reasons[0].Message, "webhook demo: the webhook body is not well-formed JSON")
	require.Equal(t, `{"data":{}}`, string(recs[1].Body))
	require.True(t, recs[1].HasField("type"), "%v", recs[1].Reasons)
	for _, rec := range recs {
		require.False(t, rec.CanRecover())
		require.Empty(t, rec.EventType)
		require.Equal(t, "webhook:demo", rec.KeyID)
	}
}
