// Package signature signs and verifies webhooks: Standard Webhooks v1
// (standardwebhooks.com) and the old order system's scheme. Every check
// is an HMAC-SHA256 over the raw request bytes, compared in constant time.
package signature

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every Standard Webhooks secret.
const SecretPrefix = "whsec_"

// Errors a verification returns; each is a 401 at the edge.
var (
	ErrMissing   = errors.New("signature headers missing")
	ErrMalformed = errors.New("signature headers malformed")
	ErrStale     = errors.New("timestamp outside the tolerance")
	ErrMismatch  = errors.New("no signature matches")
)

// Secret is a decoded Standard Webhooks key.
type Secret []byte

// ParseSecret decodes "whsec_<base64>" (the prefix is optional, as the
// reference libraries accept); the key must be 24 to 64 bytes.
func ParseSecret(s string) (Secret, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("secret is not base64 after %q", SecretPrefix)
	}
	if len(b) < 24 || len(b) > 64 {
		return nil, fmt.Errorf("secret key must be 24 to 64 bytes, got %d", len(b))
	}
	return b, nil
}

// NewSecret returns a fresh random secret in its "whsec_" form.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// String is the secret's "whsec_" form.
func (s Secret) String() string { return SecretPrefix + base64.StdEncoding.EncodeToString(s) }

// mac computes base64(HMAC(key, id "." ts "." body)) appended to dst.
func (s Secret) mac(dst []byte, id, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, s)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	var sum [sha256.Size]byte
	return base64.StdEncoding.AppendEncode(dst, h.Sum(sum[:0]))
}

// Sign returns the webhook-signature header value for the message, one
// "v1,<base64>" entry per secret, space separated.
func Sign(secrets []Secret, id string, ts time.Time, body []byte) string {
	t := strconv.FormatInt(ts.Unix(), 10)
	out := make([]byte, 0, len(secrets)*48)
	for i, s := range secrets {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, "v1,"...)
		out = s.mac(out, id, t, body)
	}
	return string(out)
}

// Headers are the Standard Webhooks request headers.
type Headers struct {
	ID, Timestamp, Signature string
}

// Verify checks a Standard Webhooks message: the timestamp (Unix seconds)
// within tolerance of now in both directions, and any "v1," entry of the
// signature header matching any secret. It returns the timestamp.
func Verify(secrets []Secret, h Headers, body []byte, now time.Time, tolerance time.Duration) (time.Time, error) {
	if h.ID == "" || h.Timestamp == "" || h.Signature == "" {
		return time.Time{}, fmt.Errorf("%w: need webhook-id, webhook-timestamp and webhook-signature", ErrMissing)
	}
	sec, err := strconv.ParseInt(h.Timestamp, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: webhook-timestamp is not Unix seconds", ErrMalformed)
	}
	ts := time.Unix(sec, 0)
	if err := checkTime(ts, now, tolerance); err != nil {
		return ts, err
	}
	var buf [64]byte
	for _, s := range secrets {
		want := s.mac(buf[:0], h.ID, h.Timestamp, body)
		for entry := range strings.FieldsSeq(h.Signature) {
			sig, ok := strings.CutPrefix(entry, "v1,")
			if ok && hmac.Equal([]byte(sig), want) {
				return ts, nil
			}
		}
	}
	return ts, ErrMismatch
}

// checkTime compares instants, not their difference: a time.Duration
// saturates about 292 years out, and the negation of its minimum is itself,
// so a timestamp centuries ahead passed a check on now.Sub(ts).
func checkTime(ts, now time.Time, tolerance time.Duration) error {
	switch {
	case ts.Before(now.Add(-tolerance)):
		return fmt.Errorf("%w: the timestamp is %s old (tolerance %s)", ErrStale, now.Sub(ts).Round(time.Second), tolerance)
	case ts.After(now.Add(tolerance)):
		return fmt.Errorf("%w: the timestamp is %s ahead (tolerance %s)", ErrStale, ts.Sub(now).Round(time.Second), tolerance)
	}
	return nil
}
