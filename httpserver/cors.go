package httpserver

import (
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
)

// The request headers Kiln reads and the response headers browser clients
// need to see (pagination, where an answer came from, back-off).
const (
	corsAllowHeaders  = "Authorization, X-API-Key, Idempotency-Key, Last-Event-ID, Content-Type"
	corsExposeHeaders = "X-Next-Cursor, Link, X-Kiln-Source, Retry-After"
	// corsMaxAge is how long a browser may cache a preflight answer
	// (seconds; Chromium caps it at 2 hours).
	corsMaxAge = 600
)

// CORS is Fiber's CORS middleware for the origin policy: every route a
// browser calls answers preflights (204) and carries
// Access-Control-Allow-Origin for an allowed Origin. Routes under a
// serverOnly prefix (the webhooks admin API) stay server-to-server: they
// answer CORS only for origins listed explicitly ("*" does not open them),
// and send no CORS header at all otherwise. No credentials mode: Kiln
// authenticates with bearer keys, not cookies.
func CORS(o Origins, serverOnly ...string) fiber.Handler {
	isServerOnly := func(c *fiber.Ctx) bool {
		p := c.Path()
		for _, prefix := range serverOnly {
			if p == prefix || strings.HasPrefix(p, strings.TrimSuffix(prefix, "/")+"/") {
				return true
			}
		}
		return false
	}
	cfg := cors.Config{
		AllowMethods:  "GET,POST,HEAD,PUT,DELETE,PATCH",
		AllowHeaders:  corsAllowHeaders,
		ExposeHeaders: corsExposeHeaders,
		MaxAge:        corsMaxAge,
	}
	public := cfg
	if o.Any() {
		public.AllowOrigins = "*"
	} else {
		public.AllowOriginsFunc = o.Allows
	}
	private := cfg
	private.AllowOriginsFunc = o.Listed
	private.Next = func(c *fiber.Ctx) bool { return !o.Listed(c.Get(fiber.HeaderOrigin)) }
	publicCORS, privateCORS := cors.New(public), cors.New(private)
	return func(c *fiber.Ctx) error {
		if isServerOnly(c) {
			return privateCORS(c)
		}
		return publicCORS(c)
	}
}
