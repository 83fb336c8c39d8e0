// Package tokens is Kiln's subscriber tokens: short-lived JWTs (HS256)
// that a customer's backend (or `kiln tokens mint`) signs with a secret of
// KILN_TOKEN_SECRETS and hands to a browser. Their claims fix what the
// holder may read: event-type patterns (`types`), optionally one user
// (`userId`), until `exp`; optional `aud`/`iss` are checked when Kiln is
// configured with them. The server enforces the claims whatever a query
// asks for.
package tokens

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kilnhq/kiln/schemas"
)

// MinSecretLen is the shortest secret accepted: HS256 wants at least as
// many bytes as the hash (RFC 7518 section 3.2).
const MinSecretLen = 32

// Config is the token settings every role that reads shares.
type Config struct {
	// Secrets verify tokens; the first one signs (`kiln tokens mint`).
	// Several allow a rotation: add the new one first, drop the old one
	// once its tokens expired. Empty: no subscriber tokens.
	Secrets []string `env:"KILN_TOKEN_SECRETS" envSeparator:","`
	// Audience and Issuer, when set, must be the token's aud and iss.
	Audience string `env:"KILN_TOKEN_AUDIENCE"`
	Issuer   string `env:"KILN_TOKEN_ISSUER"`
}

// Enabled reports whether subscriber tokens are configured.
func (c Config) Enabled() bool { return len(c.secrets()) > 0 }

func (c Config) secrets() []string {
	var out []string
	for _, s := range c.Secrets {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Validate reports a bad setting, naming its env var (never a secret).
func (c Config) Validate() error {
	if len(c.Secrets) > 0 && !c.Enabled() {
		return errors.New("KILN_TOKEN_SECRETS is set but holds no secret; unset it to turn subscriber tokens off")
	}
	for i, s := range c.secrets() {
		if len(s) < MinSecretLen {
			return fmt.Errorf("KILN_TOKEN_SECRETS: secret %d is %d bytes; each must be at least %d (e.g. openssl rand -hex 32)",
				i+1, len(s), MinSecretLen)
		}
	}
	return nil
}

// Claims are what a token allows.
type Claims struct {
	// Types are the event-type patterns the holder may read (NATS
	// wildcards, as ?type= on /stream); at least one.
	Types []string `json:"types"`
	// UserID, when set, limits reads to that user's events.
	UserID string `json:"userId,omitempty"`
	jwt.RegisteredClaims
}

// Allows reports whether an event of type typ by user may be read.
func (c *Claims) Allows(typ, user string) bool {
	if c.UserID != "" && user != c.UserID {
		return false
	}
	return c.AllowsType(typ)
}

// AllowsType reports whether some event of type typ may be read.
func (c *Claims) AllowsType(typ string) bool {
	return slices.ContainsFunc(c.Types, func(p string) bool { return schemas.MatchType(p, typ) })
}

// Why a token is refused; the messages are the 401 details.
var (
	ErrExpired      = errors.New("token expired")
	ErrBadSignature = errors.New("bad signature")
	ErrMalformed    = errors.New("malformed token")
	ErrClaims       = errors.New("bad claims")
)

// Keyring signs and verifies tokens.
type Keyring struct {
	secrets  [][]byte
	parser   *jwt.Parser
	audience string
	issuer   string
}

// NewKeyring returns the keyring of cfg, or nil when tokens are off.
func NewKeyring(cfg Config) (*Keyring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, nil
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(5 * time.Second),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	k := &Keyring{parser: jwt.NewParser(opts...), audience: cfg.Audience, issuer: cfg.Issuer}
	for _, s := range cfg.secrets() {
		k.secrets = append(k.secrets, []byte(s))
	}
	return k, nil
}

// Looks reports whether s has the shape of a JWT (three base64url parts,
// a JSON header), to tell a token from an API key without verifying it.
func Looks(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

// Verify returns the claims of a valid token, or an error wrapping
// ErrExpired, ErrBadSignature, ErrMalformed or ErrClaims with the reason.
// Each secret is tried in turn (rotation).
func (k *Keyring) Verify(token string) (*Claims, error) {
	var err error
	for _, secret := range k.secrets {
		c := &Claims{}
		_, err = k.parser.ParseWithClaims(token, c, func(*jwt.Token) (any, error) { return secret, nil })
		if err == nil {
			if err := check(c); err != nil {
				return nil, err
			}
			return c, nil
		}
		if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			break // the same answer with every secret
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, ErrBadSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrExpired
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, jwt.ErrTokenUnverifiable):
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	default:
		return nil, fmt.Errorf("%w: %v", ErrClaims, err)
	}
}

// check validates what the token library does not know: the types.
func check(c *Claims) error {
	if len(c.Types) == 0 {
		return fmt.Errorf("%w: types (the event-type patterns it may read) is missing", ErrClaims)
	}
	for _, p := range c.Types {
		if err := schemas.CheckPattern(p); err != nil {
			return fmt.Errorf("%w: types: %v", ErrClaims, err)
		}
	}
	return nil
}

// Mint is what a new token allows and for how long.
type Mint struct {
	Types   []string
	UserID  string
	TTL     time.Duration
	Subject string // optional sub
}

// Sign returns a token for m signed with the first secret, carrying the
// configured aud and iss.
func (k *Keyring) Sign(m Mint, now time.Time) (string, error) {
	if m.TTL <= 0 {
		return "", errors.New("ttl must be positive")
	}
	c := &Claims{Types: m.Types, UserID: m.UserID, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   m.Subject,
		Issuer:    k.issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(m.TTL)),
	}}
	if k.audience != "" {
		c.Audience = jwt.ClaimStrings{k.audience}
	}
	if err := check(c); err != nil {
		return "", err
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(k.secrets[0])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}
