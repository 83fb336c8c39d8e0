package tokens_test

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/httpserver/tokens"
)

const (
	secretA = "0123456789abcdef0123456789abcdef-a"
	secretB = "0123456789abcdef0123456789abcdef-b"
)

func keyring(t *testing.T, cfg tokens.Config) *tokens.Keyring {
	t.Helper()
	k, err := tokens.NewKeyring(cfg)
	require.NoError(t, err)
	require.NotNil(t, k)
	return k
}

func TestVerifyRefusesWithAReason(t *testing.T) {
	t.Parallel()
	now := time.Now()
	a := keyring(t, tokens.Config{Secrets: []string{secretA}})
	good, err := a.Sign(tokens.Mint{Types: []string{"order.*"}, UserID: "u1", TTL: time.Minute}, now)
	require.NoError(t, err)
	expired, err := a.Sign(tokens.Mint{Types: []string{"order.*"}, TTL: time.Minute}, now.Add(-time.Hour))
	require.NoError(t, err)
	other, err := keyring(t, tokens.Config{Secrets: []string{secretB}}).Sign(tokens.Mint{Types: []string{">"}, TTL: time.Minute}, now)
	require.NoError(t, err)
	parts := strings.Split(good, ".")
	// The payload re-signed by nobody: types widened to every event.
	widened := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"types":[">"],"exp":`+strconv.FormatInt(now.Add(time.Hour).Unix(), 10)+`}`)) + "." + parts[2]
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"types": []string{">"}, "exp": now.Add(time.Hour).Unix()}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	noTypes, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": now.Add(time.Hour).Unix()}).SignedString([]byte(secretA))
	require.NoError(t, err)
	noExp, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"types": []string{">"}}).SignedString([]byte(secretA))
	require.NoError(t, err)

	c, err := a.Verify(good)
	require.NoError(t, err)
	require.Equal(t, []string{"order.*"}, c.Types)
	require.True(t, c.Allows("order.created", "u1"))
	require.False(t, c.Allows("order.created", "u2"))
	require.False(t, c.Allows("payment.failed", "u1"))

	for _, tt := range []struct {
		name, token string
		want        error
	}{
		{"expired", expired, tokens.ErrExpired},
		{"other secret", other, tokens.ErrBadSignature},
		{"tampered payload", widened, tokens.ErrBadSignature},
		{"alg none", none, tokens.ErrBadSignature},
		{"no types", noTypes, tokens.ErrClaims},
		{"no exp", noExp, tokens.ErrClaims},
		{"garbage", "eyJhbGciOi.x.y", tokens.ErrMalformed},
	} {
		_, err := a.Verify(tt.token)
		require.ErrorIs(t, err, tt.want, tt.name)
	}
}

func TestRotationAndAudience(t *testing.T) {
	t.Parallel()
	now := time.Now()
	old := keyring(t, tokens.Config{Secrets: []string{secretA}})
	tok, err := old.Sign(tokens.Mint{Types: []string{"page.*"}, TTL: time.Minute}, now)
	require.NoError(t, err)
	rotated := keyring(t, tokens.Config{Secrets: []string{secretB, secretA}})
	_, err = rotated.Verify(tok)
	require.NoError(t, err, "a token of the old secret verifies while it is listed")

	aud := keyring(t, tokens.Config{Secrets: []string{secretA}, Audience: "kiln-prod", Issuer: "shop"})
	_, err = aud.Verify(tok)
	require.ErrorIs(t, err, tokens.ErrClaims, "no aud/iss where they are required")
	tok, err = aud.Sign(tokens.Mint{Types: []string{"page.*"}, TTL: time.Minute}, now)
	require.NoError(t, err)
	_, err = aud.Verify(tok)
	require.NoError(t, err)
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, tokens.Config{}.Validate())
	require.ErrorContains(t, tokens.Config{Secrets: []string{"short"}}.Validate(), "at least 32")
	require.ErrorContains(t, tokens.Config{Secrets: []string{" "}}.Validate(), "holds no secret")
	k, err := tokens.NewKeyring(tokens.Config{})
	require.NoError(t, err)
	require.Nil(t, k)
}
