package signature_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/webhooks/signature"
)

// The example of the Standard Webhooks specification.
const (
	specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTS     = 1614265330
	specBody   = `{"test": 2432232314}`
	specSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesSpecification(t *testing.T) {
	s, err := signature.ParseSecret(specSecret)
	require.NoError(t, err)
	require.Equal(t, specSig, signature.Sign([]signature.Secret{s}, specID, time.Unix(specTS, 0), []byte(specBody)))
	require.Equal(t, specSecret, s.String())
}

func TestVerify(t *testing.T) {
	s, err := signature.ParseSecret(specSecret)
	require.NoError(t, err)
	other, err := signature.ParseSecret(signature.NewSecret())
	require.NoError(t, err)
	at := time.Unix(specTS, 0)
	h := signature.Headers{ID: specID, Timestamp: "1614265330", Signature: "v1,bad " + specSig}
	_, err = signature.Verify([]signature.Secret{other, s}, h, []byte(specBody), at.Add(4*time.Minute), 5*time.Minute)
	require.NoError(t, err, "any entry, any secret")

	for name, c := range map[string]struct {
		h    signature.Headers
		body string
		now  time.Time
		want error
	}{
		"stale":     {h, specBody, at.Add(6 * time.Minute), signature.ErrStale},
		"future":    {h, specBody, at.Add(-6 * time.Minute), signature.ErrStale},
		"body":      {h, specBody + " ", at, signature.ErrMismatch},
		"no header": {signature.Headers{ID: specID, Timestamp: "1614265330"}, specBody, at, signature.ErrMissing},
		"bad ts":    {signature.Headers{ID: specID, Timestamp: "x", Signature: specSig}, specBody, at, signature.ErrMalformed},
		"v2 only":   {signature.Headers{ID: specID, Timestamp: "1614265330", Signature: "v2," + specSig[3:]}, specBody, at, signature.ErrMismatch},
	} {
		_, err := signature.Verify([]signature.Secret{s}, c.h, []byte(c.body), c.now, 5*time.Minute)
		require.True(t, errors.Is(err, c.want), "%s: %v", name, err)
	}
}

func TestParseSecret(t *testing.T) {
	_, err := signature.ParseSecret("whsec_c2hvcnQ=")
	require.ErrorContains(t, err, "24 to 64 bytes")
	_, err = signature.ParseSecret("whsec_!!")
	require.Error(t, err)
	s, err := signature.ParseSecret(signature.NewSecret())
	require.NoError(t, err)
	require.Len(t, s, 32)
}

// The old scheme as the Node senders compute it (value printed by node's
// crypto.createHmac('sha256', 's3cret-value:demo').update(ts + body)).
func TestLegacyMatchesNode(t *testing.T) {
	body := `{"type":"order.created","data":{"id":"o-1","status":"created","amount":42.5,"currency":"EUR","customerEmail":"ann@example.com","createdAt":"2026-12-01T20:00:00.000Z"}}`
	const ts = "1764619200000"
	const node = "8b0e52a7c92bb6a1f4c206125d6673b36f894381a73097c73791fde841194359"
	require.Equal(t, node, signature.LegacySign("s3cret-value", "demo", ts, []byte(body)))
	at := time.UnixMilli(1764619200000)
	_, err := signature.LegacyVerify([]string{"old", "s3cret-value"}, "demo", node, ts, []byte(body), at, 5*time.Minute)
	require.NoError(t, err)
	_, err = signature.LegacyVerify([]string{"s3cret-value"}, "demo2", node, ts, []byte(body), at, 5*time.Minute)
	require.ErrorIs(t, err, signature.ErrMismatch)
	_, err = signature.LegacyVerify([]string{"s3cret-value"}, "demo", node, ts, []byte(body), at.Add(-5*time.Minute-time.Millisecond), 5*time.Minute)
	require.ErrorIs(t, err, signature.ErrStale)
}

func BenchmarkVerify(b *testing.B) {
	s, _ := signature.ParseSecret(specSecret)
	body := make([]byte, 1024)
	now := time.Now()
	h := signature.Headers{ID: specID, Timestamp: strconv.FormatInt(now.Unix(), 10)}
	h.Signature = signature.Sign([]signature.Secret{s}, specID, now, body)
	secrets := []signature.Secret{s}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := signature.Verify(secrets, h, body, now, 5*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}
