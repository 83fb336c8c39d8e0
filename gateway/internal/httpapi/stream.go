package httpapi

import (
	"math"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/gateway/internal/live"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/problem"
)

// headerLastEventID is the header EventSource sends when it reconnects.
const headerLastEventID = "Last-Event-ID"

// Stream serves GET /stream, the live event stream (Server-Sent Events).
type Stream struct {
	// Hub is the process's live fan-out; nil when the gateway has no NATS
	// connection, and then GET /stream answers 503.
	Hub *live.Hub
}

// Handle handles GET /stream: it parses the request, then hands the
// response body to the hub, which writes frames until the client leaves or
// the server shuts down.
func (h *Stream) Handle(c *fiber.Ctx) error {
	req, err := parseStream(c)
	if err != nil {
		return err
	}
	if t := tokenOf(c); t != nil {
		// A token's stream: its events only, whatever the query asks
		// (the query's filter still narrows them), and none of the frames
		// that show every user's data (alerts, metrics).
		if err := scopeUser(t, &req.Filter.UserID); err != nil {
			return err
		}
		req.Filter.Granted, req.Filter.NoAlerts, req.Scoped = t.Types, true, true
	}
	if h.Hub == nil {
		return problem.Unavailable("the live stream is not configured on this gateway", 0)
	}
	if err := h.Hub.Available(); err != nil {
		return problem.Unavailable(err.Error(), 1)
	}
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	if c.Method() == fiber.MethodHead {
		return nil
	}
	// The stream takes the connection over: fasthttp's reader, writer and
	// connection goroutine are released, and one goroutine per client
	// writes the frames straight to the socket, buffering only while it
	// has something to send (see live.Hub.Serve). The body ends when the
	// connection closes (no Content-Length, no chunking); browsers open a
	// new connection to reconnect anyway.
	fc := c.Context()
	fc.Response.Header.Del(fiber.HeaderContentLength)
	fc.Response.Header.Del(fiber.HeaderTransferEncoding)
	fc.Response.Header.SetConnectionClose()
	head := slices.Clone(fc.Response.Header.Header())
	req.Done = fc.Done()
	hub := h.Hub
	fc.HijackSetNoResponse(true)
	fc.Hijack(func(conn net.Conn) {
		if _, err := conn.Write(head); err != nil {
			return
		}
		req.Conn = conn
		hub.Serve(conn, req)
	})
	return nil
}

// streamParams are the query parameters GET /stream reads; access_token
// (auth) is accepted too.
func streamParams() []string {
	return []string{"type", "userId", "since", "alerts"}
}

// parseStream reads the GET /stream query and Last-Event-ID, naming every
// bad parameter. Empty values count as absent. Last-Event-ID wins over
// since: a browser reconnecting sends it with the original URL.
func parseStream(c *fiber.Ctx) (live.Request, error) {
	args := queryArgs(c)
	var req live.Request
	var errs paramErrors
	var unknown []string
	for name := range args {
		if name != "access_token" && !slices.Contains(streamParams(), name) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		errs.add(name, "is not a parameter of this endpoint (allowed: %s)", strings.Join(streamParams(), ", "))
	}
	for _, name := range streamParams() {
		vals := slices.DeleteFunc(slices.Clone(args[name]), func(v string) bool { return v == "" })
		switch {
		case len(vals) == 0:
		case name != "type" && len(vals) > 1:
			errs.add(name, "must be given at most once")
		case name == "type":
			req.Filter.Types = parsePatterns(vals, &errs)
		case name == "userId":
			if len(vals[0]) > maxUserIDLen {
				errs.add(name, "must be at most %d characters", maxUserIDLen)
			}
			req.Filter.UserID = vals[0]
		case name == "since":
			req.Since, req.Resume = parseSeq(name, vals[0], &errs), true
		case name == "alerts":
			on, err := strconv.ParseBool(vals[0])
			if err != nil {
				errs.add(name, "must be 1 or true (the default: send alert frames) or 0 or false (leave them out), got %q", vals[0])
			}
			req.Filter.NoAlerts = err == nil && !on
		}
	}
	if id := strings.TrimSpace(c.Get(headerLastEventID)); id != "" {
		req.Since, req.Resume = parseSeq(headerLastEventID, id, &errs), true
	}
	if err := errs.err(); err != nil {
		return live.Request{}, err
	}
	return req, nil
}

// maxSince is the largest position passed on: any value from it up is past
// every sequence the stream can hold, so it means "live from now", and
// catch-up arithmetic on since+1 cannot wrap to 0 (a replay of the whole
// stream).
const maxSince = math.MaxUint64 - 1

// parseSeq reads a stream sequence: the id of the last event received.
func parseSeq(name, v string, errs *paramErrors) uint64 {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		errs.add(name, "must be a stream sequence (the id of the last event received, an integer >= 0), got %q", v)
	}
	return min(n, maxSince)
}

// parsePatterns reads event-type patterns: event types whose tokens may be
// '*' (exactly one token) or, as the last token, '>' (one or more).
func parsePatterns(vals []string, errs *paramErrors) []string {
	if len(vals) > maxTypes {
		errs.add("type", "may be given at most %d times", maxTypes)
		return nil
	}
	for _, p := range vals {
		if err := schemas.CheckPattern(p); err != nil {
			errs.add("type", "%v; repeat type for several patterns", err)
		}
	}
	return vals
}
