package ingest

import (
	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/httpserver"
)

// rateLimitKey is who INGEST_RATE_LIMIT counts a request against: a
// configured ingest key (a server holding it gets its own budget), else
// the client address. Any other value is not an identity: with auth off
// every key is accepted, and keying on it gave each request that sent a
// new one a fresh budget and the limiter a new entry. A publishable key is
// shared by every browser of a site, so its requests count by address.
func (s *Service) rateLimitKey(c *fiber.Ctx) string {
	if key := httpserver.RequestKey(c, false); key != "" && s.access.Ingest.Allows(key) {
		return "key:" + key
	}
	return "ip:" + c.IP()
}
