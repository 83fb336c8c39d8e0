package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// Legacy headers of the old order system's scheme.
const (
	LegacySignatureHeader = "X-Signature"
	LegacyTimestampHeader = "X-Timestamp"
)

// LegacySign returns the X-Signature of the old scheme: lowercase hex
// HMAC-SHA256 keyed "<secret>:<provider>" over the X-Timestamp string
// immediately followed by the body.
func LegacySign(secret, provider, ts string, body []byte) string {
	var sum [sha256.Size]byte
	return hex.EncodeToString(legacyMAC(sum[:0], secret, provider, ts, body))
}

func legacyMAC(dst []byte, secret, provider, ts string, body []byte) []byte {
	key := make([]byte, 0, len(secret)+1+len(provider))
	key = append(append(append(key, secret...), ':'), provider...)
	h := hmac.New(sha256.New, key)
	h.Write([]byte(ts))
	h.Write(body)
	return h.Sum(dst)
}

// LegacyVerify checks an old-scheme message against any of secrets: the
// X-Timestamp (Unix milliseconds) within tolerance of now both ways and
// the hex signature matching. It returns the timestamp.
func LegacyVerify(secrets []string, provider, sig, ts string, body []byte, now time.Time, tolerance time.Duration) (time.Time, error) {
	if sig == "" || ts == "" {
		return time.Time{}, fmt.Errorf("%w: need X-Signature and X-Timestamp", ErrMissing)
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, fmt.Errorf("%w: X-Timestamp is not Unix milliseconds", ErrMalformed)
	}
	t := time.UnixMilli(ms)
	if err := checkTime(t, now, tolerance); err != nil {
		return t, err
	}
	got := make([]byte, hex.DecodedLen(len(sig)))
	if len(sig) != 2*sha256.Size {
		return t, ErrMismatch
	}
	if _, err := hex.Decode(got, []byte(sig)); err != nil {
		return t, fmt.Errorf("%w: X-Signature is not hex", ErrMalformed)
	}
	var buf [sha256.Size]byte
	for _, s := range secrets {
		if hmac.Equal(got, legacyMAC(buf[:0], s, provider, ts, body)) {
			return t, nil
		}
	}
	return t, ErrMismatch
}
