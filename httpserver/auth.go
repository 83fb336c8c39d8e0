package httpserver

import (
	"crypto/sha256"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/schemas/problem"
)

// Keys is a set of API keys. The zero value (no keys) turns auth off.
type Keys struct {
	digests map[[32]byte]struct{}
}

// NewKeys returns the key set for the given keys; empty strings are ignored.
func NewKeys(keys ...string) Keys {
	k := Keys{digests: map[[32]byte]struct{}{}}
	for _, key := range keys {
		if key = strings.TrimSpace(key); key != "" {
			k.digests[sha256.Sum256([]byte(key))] = struct{}{}
		}
	}
	return k
}

// Enabled reports whether any key is configured.
func (k Keys) Enabled() bool { return len(k.digests) > 0 }

// Allows reports whether key is one of the set. Keys are compared by their
// SHA-256 digests, so lookup time does not depend on how much of a key matches.
func (k Keys) Allows(key string) bool {
	_, ok := k.digests[sha256.Sum256([]byte(key))]
	return ok
}

// RequestKey returns the API key a request carries: Authorization: Bearer,
// then X-API-Key, then (for EventSource, which cannot set headers) the
// access_token query parameter when allowQuery is set.
func RequestKey(c *fiber.Ctx, allowQuery bool) string {
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		if token, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(token)
		}
	}
	if h := c.Get("X-API-Key"); h != "" {
		return h
	}
	if allowQuery {
		return c.Query("access_token")
	}
	return ""
}

// RequireKey is middleware that answers 401 unless the request carries one
// of keys. With no keys configured it lets every request through.
func RequireKey(keys Keys, allowQuery bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !keys.Enabled() {
			return c.Next()
		}
		key := RequestKey(c, allowQuery)
		if key == "" || !keys.Allows(key) {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="kiln"`)
			detail := "this endpoint needs an API key: send Authorization: Bearer <key> or X-API-Key"
			if key != "" {
				detail = "the API key is not valid for this endpoint"
			}
			return problem.New(http.StatusUnauthorized, "unauthorized", "Unauthorized", detail)
		}
		return c.Next()
	}
}
