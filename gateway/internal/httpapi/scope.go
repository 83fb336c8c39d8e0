package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/httpserver/tokens"
	"github.com/kilnhq/kiln/schemas/problem"
)

// tokenOf is the subscriber token's claims a request's reads are limited
// to, or nil when they are not (a read key, or read auth off).
func tokenOf(c *fiber.Ctx) *tokens.Claims {
	r, ok := httpserver.RightsOf(c)
	if !ok || r.ReadAll {
		return nil
	}
	return r.Token
}

func forbidden(field, msg string) error {
	p := problem.New(http.StatusForbidden, "outside-token", "Outside the token", msg)
	p.Errors = []problem.FieldError{{Field: field, Message: msg}}
	return p
}

// scopeUser applies a token's userId to a query's: a token of one user
// reads that user's events whatever userId asks, and asking for another
// user is 403.
func scopeUser(t *tokens.Claims, user *string) error {
	if t.UserID == "" {
		return nil
	}
	if *user != "" && *user != t.UserID {
		return forbidden("userId", "this token reads only the events of user "+strconv.Quote(t.UserID))
	}
	*user = t.UserID
	return nil
}

// scopeList limits a GET /events query to what the request's token may
// read: its userId, and types among its patterns. Types the token does not
// allow are 403 (the query names them, so nothing is dropped silently); a
// query naming no type reads the token's patterns (MongoDB answers those).
func scopeList(c *fiber.Ctx, q *listQuery) error {
	t := tokenOf(c)
	if t == nil {
		return nil
	}
	if err := scopeUser(t, &q.UserID); err != nil {
		return err
	}
	for _, typ := range q.Types {
		if !t.AllowsType(typ) {
			return forbidden("type", "this token does not read events of type "+strconv.Quote(typ)+
				" (it reads "+strings.Join(t.Types, ", ")+")")
		}
	}
	if len(q.Types) == 0 {
		q.TypePatterns = t.Types
	}
	return nil
}
