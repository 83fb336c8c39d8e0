package ingest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Issue 21 item 7: a captured old-scheme webhook replayed with its
// X-Signature spelled differently (upper-case hex verifies too) is the same
// webhook, stored once.
func TestWebhookReplayWithOtherHexCaseStoredOnce(t *testing.T) {
	t.Parallel()
	h := webhookHarness(t)
	ts := nowMillis()
	sig := legacySignature(legacySecret, "demo", ts, orderPayload)
	for _, spelling := range []string{sig, strings.ToUpper(sig), strings.ToUpper(sig[:32]) + sig[32:]} {
		r := h.webhook(t, "demo", orderPayload, "X-Signature", spelling, "X-Timestamp", ts)
		require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	}
	require.Equal(t, uint64(1), h.count(t, "events.order.created"))
}

// The Standard Webhooks id is the signed webhook-id, so how the signature
// header is written (more entries, another order) does not make another event.
func TestWebhookStandardReplayWithOtherSignatureListStoredOnce(t *testing.T) {
	t.Parallel()
	h := webhookHarness(t)
	ts := nowSeconds()
	sig := standardSignature(t, shopSecretOld, "msg_replay", ts, orderPayload)
	for _, header := range []string{sig, "v1,AAAA " + sig, sig + " " + sig} {
		r := h.webhook(t, "shop", orderPayload, "webhook-id", "msg_replay", "webhook-timestamp", ts, "webhook-signature", header)
		require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	}
	require.Equal(t, uint64(1), h.count(t, "events.order.created"))
}
