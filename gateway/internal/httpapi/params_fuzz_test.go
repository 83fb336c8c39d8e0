package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/schemas/problem"
)

// violation is the status paramsApp answers when a parser broke its
// promise, with the reason as the body.
const violation = 599

// paramsApp answers 204 when a query parses into bounded values, 400 when
// it is refused with a 400 problem, and violation otherwise.
func paramsApp() *fiber.App {
	app := fiber.New()
	var broken func(string, ...any)
	refused := func(path string, err error) error {
		var p *problem.Details
		if !errors.As(err, &p) || p.Status != http.StatusBadRequest || p.Detail == "" {
			broken("%s: refused without a 400 problem: %v", path, err)
		}
		return fiber.NewError(http.StatusBadRequest)
	}
	app.Use(func(c *fiber.Ctx) error {
		var why []string
		broken = func(format string, args ...any) { why = append(why, fmt.Sprintf(format, args...)) }
		err := c.Next()
		if len(why) > 0 {
			return c.Status(violation).SendString(strings.Join(why, "; "))
		}
		return err
	})
	app.Get("/events", func(c *fiber.Ctx) error {
		q, err := parseList(c)
		if err != nil {
			return refused("/events", err)
		}
		if q.Limit < 1 || q.Limit > maxLimit || (q.From > 0 && q.To > 0 && q.From > q.To) || len(q.Types) > maxTypes {
			broken("/events accepted out of bounds: %+v", q.Query)
		}
		for _, typ := range q.Types {
			if !isEventType(typ) {
				broken("/events accepted type %q", typ)
			}
		}
		return c.SendStatus(http.StatusNoContent)
	})
	app.Get("/alerts", func(c *fiber.Ctx) error {
		q, err := parseAlerts(c)
		if err != nil {
			return refused("/alerts", err)
		}
		if q.Limit < 1 || q.Limit > maxLimit {
			broken("/alerts accepted limit %d", q.Limit)
		}
		return c.SendStatus(http.StatusNoContent)
	})
	app.Get("/stream", func(c *fiber.Ctx) error {
		req, err := parseStream(c)
		if err != nil {
			return refused("/stream", err)
		}
		if req.Since > 0 && !req.Resume {
			broken("/stream: since %d without resume", req.Since)
		}
		return c.SendStatus(http.StatusNoContent)
	})
	return app
}

// FuzzQueryParameters: any query string (and Last-Event-ID) on the read
// endpoints either parses into bounded values or is a 400 problem naming
// the parameters at fault; nothing panics.
func FuzzQueryParameters(f *testing.F) {
	for _, seed := range []struct{ path, query, lastEventID string }{
		{"/events", "limit=1000&type=order.created&type=page_view&userId=u1", ""},
		{"/events", "from=2026-01-01T00:00:00Z&to=1767225600000&cursor=garbage", ""},
		{"/events", "limit=0&from=x&bogus=1&type=a..b", ""},
		{"/events", "limit=1&limit=2&to=253402300800000", ""},
		{"/alerts", "rule=big-order&channel=slack&status=dead&limit=10", ""},
		{"/alerts", "before=1&cursor=%%%&status=nope", ""},
		{"/stream", "since=18446744073709551615&type=order.*&alerts=0", ""},
		{"/stream", "since=-1&type=a.>&userId=u", "42"},
		{"/stream", "", "18446744073709551616"},
	} {
		f.Add(seed.path, seed.query, seed.lastEventID)
	}
	app := paramsApp()
	f.Fuzz(func(t *testing.T, path, query, lastEventID string) {
		switch path {
		case "/events", "/alerts", "/stream":
		default:
			path = "/events"
		}
		req, err := http.NewRequest(http.MethodGet, "http://kiln"+path, nil)
		if err != nil {
			return
		}
		req.URL.RawQuery = escapeRaw(query)
		if lastEventID != "" {
			req.Header["Last-Event-Id"] = []string{lastEventID}
		}
		resp, err := app.Test(req, -1)
		if err != nil {
			return // a request fasthttp itself refuses to read
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("GET %s?%q (Last-Event-ID %q): status %d %s", path, query, lastEventID, resp.StatusCode, body)
		}
	})
}

// escapeRaw percent-encodes the bytes that cannot appear in a request line
// (controls, space, non-ASCII, '#'), leaving the query's structure (&, =,
// existing escapes) as the fuzzer wrote it.
func escapeRaw(q string) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c >= 0x7f || c == '#' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
