package signature_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/webhooks/signature"
)

// fuzzNow is the verifier's clock in the fuzz targets: the specification
// example's time.
var fuzzNow = time.Unix(specTS, 0)

// withinTolerance reports whether ts is at most tolerance from now, in
// either direction, without overflowing a time.Duration.
func withinTolerance(ts time.Time, tolerance time.Duration) bool {
	return !ts.Before(fuzzNow.Add(-tolerance)) && !ts.After(fuzzNow.Add(tolerance))
}

// FuzzVerify: whatever the headers and body, Standard Webhooks
// verification never panics, and it succeeds only with a timestamp within
// the tolerance and a "v1," entry that is exactly the MAC of the message.
// With signed set, the fuzzed header gets the true MAC of the fuzzed
// message appended, so the timestamp check is what decides.
func FuzzVerify(f *testing.F) {
	sec, err := signature.ParseSecret(specSecret)
	if err != nil {
		f.Fatal(err)
	}
	secrets := []signature.Secret{sec}
	f.Add(specID, "1614265330", specSig, []byte(specBody), false)
	f.Add(specID, "1614265330", "v1,bad "+specSig, []byte(specBody), false)
	f.Add(specID, "1614265330", "v1,"+strings.ToLower(specSig[3:]), []byte(specBody), false)
	f.Add(specID, "+1614265330", "", []byte(specBody), true)
	f.Add(specID, "01614265330", "", []byte(specBody), true)
	f.Add(specID, "1614265631", "", []byte(specBody), true)
	f.Add(specID, "20000000000", "", []byte(specBody), true)
	f.Add(specID, "9223372036854775807", "", []byte(specBody), true)
	f.Add(specID, "-9223372036854775808", "", []byte(specBody), true)
	f.Add("", "", "", []byte(nil), false)
	f.Add(specID, "1614265330", strings.Repeat("v1, ", 1000), []byte(specBody), false)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte, signed bool) {
		if signed {
			sig += " v1," + macOf(sec, id, ts, body)
		}
		got, err := signature.Verify(secrets, signature.Headers{ID: id, Timestamp: ts, Signature: sig}, body, fuzzNow, 5*time.Minute)
		if err != nil {
			return
		}
		if !withinTolerance(got, 5*time.Minute) {
			t.Fatalf("verified with timestamp %q (%s), outside the tolerance of %s", ts, got, fuzzNow)
		}
		want := "v1," + macOf(sec, id, ts, body)
		found := false
		for entry := range strings.FieldsSeq(sig) {
			found = found || entry == want
		}
		if !found {
			t.Fatalf("verified %q without the message's MAC %q", sig, want)
		}
	})
}

// FuzzLegacyVerify: the old scheme never panics, and succeeds only with an
// X-Timestamp within the tolerance and an X-Signature that is the MAC's
// hex (in either case). With signed set, the X-Signature is the true MAC
// of the fuzzed message.
func FuzzLegacyVerify(f *testing.F) {
	const secret, provider, ts = "s3cret-value", "demo", "1614265330000"
	body := []byte(`{"type":"order.created","data":{"id":"o-1"}}`)
	sig := signature.LegacySign(secret, provider, ts, body)
	f.Add(sig, ts, body, false)
	f.Add(strings.ToUpper(sig), ts, body, false)
	f.Add(sig[:63], ts, body, false)
	f.Add(sig+"0", ts, body, false)
	f.Add("", "+"+ts, body, true)
	f.Add("", "1614265630001", body, true)
	f.Add("", strconv.FormatInt(math.MaxInt64, 10), body, true)
	f.Add("", "9223372036854775", body, true)
	f.Add("", "20000000000000", body, true)
	f.Add("", "-1", body, true)
	f.Add("", "", []byte(nil), false)
	f.Add(strings.Repeat("zz", 32), ts, body, false)
	f.Fuzz(func(t *testing.T, sig, ts string, body []byte, signed bool) {
		if signed {
			sig = signature.LegacySign(secret, provider, ts, body)
		}
		got, err := signature.LegacyVerify([]string{"other", secret}, provider, sig, ts, body, fuzzNow, 5*time.Minute)
		if err != nil {
			return
		}
		if !withinTolerance(got, 5*time.Minute) {
			t.Fatalf("verified with X-Timestamp %q (%s), outside the tolerance of %s", ts, got, fuzzNow)
		}
		if want := signature.LegacySign(secret, provider, ts, body); !strings.EqualFold(sig, want) {
			t.Fatalf("verified %q, which is not the MAC %q", sig, want)
		}
	})
}

// macOf is the base64 MAC of a Standard Webhooks message, as the
// specification computes it over the timestamp header as sent.
func macOf(s signature.Secret, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, s)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// TestTimestampsCenturiesAheadAreStale: a correctly signed message dated
// centuries ahead is stale in both schemes (the check on now.Sub(ts)
// overflowed and passed them).
func TestTimestampsCenturiesAheadAreStale(t *testing.T) {
	sec, err := signature.ParseSecret(specSecret)
	require.NoError(t, err)
	body := []byte(specBody)
	for _, ts := range []string{"20000000000", "9223372036854775807"} {
		h := signature.Headers{ID: specID, Timestamp: ts, Signature: "v1," + macOf(sec, specID, ts, body)}
		_, err := signature.Verify([]signature.Secret{sec}, h, body, fuzzNow, 5*time.Minute)
		require.ErrorIs(t, err, signature.ErrStale, "webhook-timestamp %s", ts)
	}
	for _, ts := range []string{"20000000000000", "9223372036854775", "9223372036854775807"} {
		sig := signature.LegacySign("s3cret-value", "demo", ts, body)
		_, err := signature.LegacyVerify([]string{"s3cret-value"}, "demo", sig, ts, body, fuzzNow, 5*time.Minute)
		require.ErrorIs(t, err, signature.ErrStale, "X-Timestamp %s", ts)
	}
}
