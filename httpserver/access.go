package httpserver

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/httpserver/tokens"
	"github.com/kilnhq/kiln/schemas/problem"
)

// Access knows every kind of credential and turns one into its rights
// (Resolve): the one place that does, for HTTP, Socket.IO and gRPC alike.
type Access struct {
	// Ingest keys (KILN_INGEST_KEYS) write events of any type.
	Ingest Keys
	// Read keys (KILN_READ_KEYS) read everything.
	Read Keys
	// Publishable keys (KILN_PUBLISHABLE_KEYS) write their types, from
	// their origins.
	Publishable Publishable
	// Tokens verifies subscriber tokens (KILN_TOKEN_SECRETS), which read
	// what their claims allow; nil: none.
	Tokens *tokens.Keyring
}

// NewAccess is the Access of the settings: KILN_INGEST_KEYS,
// KILN_READ_KEYS, KILN_PUBLISHABLE_KEYS and the token settings.
func NewAccess(ingest, read []string, publishable string, tc tokens.Config) (*Access, error) {
	p, err := ParsePublishable(publishable)
	if err != nil {
		return nil, err
	}
	k, err := tokens.NewKeyring(tc)
	if err != nil {
		return nil, err
	}
	return &Access{Ingest: NewKeys(ingest...), Read: NewKeys(read...), Publishable: p, Tokens: k}, nil
}

// WriteAuth reports whether writing needs a credential: ingest or
// publishable keys are configured.
func (a *Access) WriteAuth() bool { return a.Ingest.Enabled() || a.Publishable.Enabled() }

// ReadAuth reports whether reading needs a credential: read keys or token
// secrets are configured.
func (a *Access) ReadAuth() bool { return a.Read.Enabled() || a.Tokens != nil }

// Rights are what one credential allows.
type Rights struct {
	// WriteAll: events of any type (an ingest key, or write auth off).
	WriteAll bool
	// Publishable: the publishable key's types only.
	Publishable *PublishableKey
	// ReadAll: every event, metric, alert and order (a read key, or read
	// auth off).
	ReadAll bool
	// Token: a subscriber token's claims: the events they allow only.
	Token *tokens.Claims
}

// CanWrite reports whether some event may be written.
func (r Rights) CanWrite() bool { return r.WriteAll || r.Publishable != nil }

// MayWrite reports whether an event of type typ may be written.
func (r Rights) MayWrite(typ string) bool {
	return r.WriteAll || r.Publishable != nil && r.Publishable.AllowsType(typ)
}

// CanRead reports whether some event may be read.
func (r Rights) CanRead() bool { return r.ReadAll || r.Token != nil }

// MayRead reports whether an event of type typ by user may be read.
func (r Rights) MayRead(typ, user string) bool {
	return r.ReadAll || r.Token != nil && r.Token.Allows(typ, user)
}

// Denied is a refused credential: Status is 401 (a token that is expired,
// tampered with or signed with another secret) or 403 (a publishable key
// from an origin it does not list); Reason says which.
type Denied struct {
	Status int
	Reason string
}

func (d *Denied) Error() string { return d.Reason }

// Resolve returns the rights of cred (the request's key or token; "" for
// none) sent from origin (its Origin header; "" for none). With no
// credential of a side configured, that side is open to everyone.
func (a *Access) Resolve(cred, origin string) (Rights, error) {
	r := Rights{WriteAll: !a.WriteAuth(), ReadAll: !a.ReadAuth()}
	if cred == "" {
		return r, nil
	}
	r.WriteAll = r.WriteAll || a.Ingest.Allows(cred)
	r.ReadAll = r.ReadAll || a.Read.Allows(cred)
	if k, ok := a.Publishable.Find(cred); ok {
		if !k.AllowsOrigin(origin) {
			why := "this publishable key is not valid for origin " + origin
			if origin == "" {
				why = "a publishable key is for browsers: the request must carry the Origin of a page the key lists"
			}
			return Rights{}, &Denied{Status: http.StatusForbidden, Reason: why}
		}
		r.Publishable = k
	}
	if a.Tokens != nil && tokens.Looks(cred) && !r.ReadAll {
		claims, err := a.Tokens.Verify(cred)
		if err != nil {
			return Rights{}, &Denied{Status: http.StatusUnauthorized, Reason: "subscriber token refused: " + err.Error()}
		}
		r.Token = claims
	}
	return r, nil
}

// Need is what a route needs of a request's rights.
type Need int

const (
	// NeedWrite: some write right (the handler checks each event's type).
	NeedWrite Need = iota
	// NeedRead: some read right (a token's scope is applied by the handler).
	NeedRead
	// NeedReadAll: a read key (metrics, alerts and orders cover every user
	// and type, so no subscriber token reads them).
	NeedReadAll
)

const rightsLocal = "kiln.rights"

// RightsOf returns the rights Require stored for the request; false when
// the route has no Require (then no credential was checked).
func RightsOf(c *fiber.Ctx) (Rights, bool) {
	r, ok := c.Locals(rightsLocal).(Rights)
	return r, ok
}

// Require is middleware that resolves the request's credential, stores
// its rights for RightsOf and answers 401 (or 403) unless they meet need.
// The credential is Authorization: Bearer, else X-API-Key, else a query
// parameter: ?access_token= on read routes (EventSource cannot set
// headers), ?key= or ?access_token= on write routes for publishable keys
// only (navigator.sendBeacon cannot either; an ingest key stays out of
// URLs). No query string is ever logged.
func (a *Access) Require(need Need) fiber.Handler {
	return func(c *fiber.Ctx) error {
		cred := RequestKey(c, false)
		fromQuery := false
		if cred == "" {
			cred, fromQuery = c.Query("access_token"), true
			if cred == "" && need == NeedWrite {
				cred = c.Query("key")
			}
		}
		r, err := a.Resolve(cred, c.Get(fiber.HeaderOrigin))
		if err != nil {
			return deniedProblem(err)
		}
		if fromQuery && need == NeedWrite && a.WriteAuth() {
			r.WriteAll = false // an ingest key in a URL is no key
		}
		ok := false
		switch need {
		case NeedWrite:
			ok = r.CanWrite()
		case NeedRead:
			ok = r.CanRead()
		case NeedReadAll:
			if r.Token != nil && !r.ReadAll {
				return problem.New(http.StatusForbidden, "forbidden", "Forbidden",
					"a subscriber token reads only its events (GET /events, /stream, Socket.IO, gRPC Subscribe); this route needs a read key")
			}
			ok = r.ReadAll
		}
		if !ok {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="kiln"`)
			detail := "this endpoint needs an API key: send Authorization: Bearer <key> or X-API-Key"
			if cred != "" {
				detail = "the API key is not valid for this endpoint"
			}
			return problem.New(http.StatusUnauthorized, "unauthorized", "Unauthorized", detail)
		}
		c.Locals(rightsLocal, r)
		return c.Next()
	}
}

// deniedProblem is the problem document of a Resolve error.
func deniedProblem(err error) error {
	var d *Denied
	if !errors.As(err, &d) {
		return fmt.Errorf("resolve credential: %w", err)
	}
	if d.Status == http.StatusForbidden {
		return problem.New(d.Status, "forbidden", "Forbidden", d.Reason)
	}
	return problem.New(d.Status, "unauthorized", "Unauthorized", d.Reason)
}
