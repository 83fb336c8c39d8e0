package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/problem"
	"github.com/kilnhq/kiln/schemas/rejections"
)

// Rejections serves GET /rejections: the events ingest refused or
// quarantined, from the REJECTIONS stream, newest first. Their bodies are
// as sent and may hold personal data: the route needs an admin key.
type Rejections struct {
	JetStream jetstream.JetStream
	Log       *slog.Logger
	// Now is the clock a summary's window ends at (nil: time.Now).
	Now func() time.Time

	mu        sync.Mutex
	summaries map[string]cachedSummary
}

// rejectionItem is one record as the API shows it.
type rejectionItem struct {
	rejections.Record
	Body json.RawMessage `json:"body"`
}

// readQuery reads the query of route, which takes params: each at most
// once, an empty value as absent, access_token (auth) passed over, a name
// not in params refused. type, which both routes take, must be an event
// type. set reads each value given (and names a bad one in errs); the
// result is the 400 naming every bad parameter, or nil.
func readQuery(c *fiber.Ctx, route string, params []string, set func(name, v string, errs *paramErrors)) error {
	var errs paramErrors
	for name, vals := range queryArgs(c) {
		switch {
		case len(vals) > 1:
			errs.add(name, "must be given at most once")
			continue
		case vals[0] == "" || name == "access_token":
			continue
		case !slices.Contains(params, name):
			errs.add(name, "is not a parameter of %s (%s)", route, strings.Join(params, ", "))
			continue
		case name == "type" && (len(vals[0]) > 128 || !isEventType(vals[0])):
			errs.add(name, "must be an event type (dot-separated tokens of [A-Za-z0-9_-], at most 128 characters)")
		}
		set(name, vals[0], &errs)
	}
	return errs.err()
}

// List handles GET /rejections?type=&field=&since=&limit=&cursor=.
func (h *Rejections) List(c *fiber.Ctx) error {
	q := rejections.Query{Limit: 50}
	err := readQuery(c, "GET /rejections", []string{"type", "field", "since", "limit", "cursor"}, func(name, v string, errs *paramErrors) {
		switch name {
		case "type":
			q.Type = v
		case "field":
			if len(v) > 256 {
				errs.add(name, "must be at most 256 characters")
			}
			q.Field = v
		case "since":
			if ms := parseTime(name, v, errs); ms > 0 {
				q.Since = time.UnixMilli(ms)
			}
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				errs.add(name, "must be an integer from 1 to 1000, got %q", v)
			}
			q.Limit = n
		case "cursor":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n < 2 {
				errs.add(name, "must be the X-Next-Cursor of a previous page")
			}
			q.Before = n
		}
	})
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	s, err := h.JetStream.Stream(ctx, rejections.StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return c.JSON([]rejectionItem{}) // ingest has not started yet
	}
	if err != nil {
		h.Log.Warn("rejections: stream", "err", err)
		return problem.Unavailable("the rejections stream did not answer", 1)
	}
	recs, next, err := rejections.List(ctx, s, q)
	if err != nil {
		h.Log.Warn("rejections: list", "err", err)
		return problem.Unavailable("the rejections stream did not answer", 1)
	}
	items := make([]rejectionItem, len(recs))
	for i, r := range recs {
		if r.Reasons == nil {
			r.Reasons = []schemas.FieldError{}
		}
		items[i] = rejectionItem{Record: r, Body: bodyJSON(r.Body)}
	}
	if next > 0 {
		c.Set("X-Next-Cursor", strconv.FormatUint(next, 10))
	}
	c.Status(http.StatusOK)
	return c.JSON(items)
}

// defaultSummaryWindow is the window of GET /rejections/summary without
// since.
const defaultSummaryWindow = time.Hour

// Summary handles GET /rejections/summary?since=&type=&top=: refusals per
// type and field over a window (default the last hour), from the records'
// headers, at most rejections.MaxSummarized of them (the newest).
func (h *Rejections) Summary(c *fiber.Ctx) error {
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	q := rejections.SummaryQuery{Since: now.Add(-defaultSummaryWindow), Now: now, Top: 5}
	relative := true
	err := readQuery(c, "GET /rejections/summary", []string{"since", "type", "top"}, func(name, v string, errs *paramErrors) {
		switch name {
		case "type":
			q.Type = v
		case "since":
			if d, err := time.ParseDuration(v); err == nil {
				if d <= 0 || d > maxSummaryWindow {
					errs.add(name, "must be a duration from 1s to %s, a Unix time in ms or an RFC 3339 time, got %q", maxSummaryWindow, v)
				}
				q.Since = now.Add(-d)
			} else if ms := parseTime(name, v, errs); ms > 0 {
				q.Since, relative = time.UnixMilli(ms), false
			}
		case "top":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 20 {
				errs.add(name, "must be an integer from 1 to 20, got %q", v)
			}
			q.Top = n
		}
	})
	if err != nil {
		return err
	}
	// A window relative to now (a duration, or the default) is shared by
	// the requests of summaryMaxAge: every open dashboard polls it.
	key := ""
	if relative {
		key = fmt.Sprintf("%s|%d|%d", q.Type, q.Top, now.Sub(q.Since))
		if body, ok := h.cached(key, now); ok {
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Send(body)
		}
	}
	sum, err := rejections.Summarize(c.UserContext(), h.JetStream, q)
	if err != nil {
		h.Log.Warn("rejections: summary", "err", err)
		return problem.Unavailable("the rejections stream did not answer", 1)
	}
	body, err := json.Marshal(sum)
	if err != nil {
		return err
	}
	if relative {
		h.keep(key, now, body)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

// summaryMaxAge is how long a summary of a relative window is shared.
const summaryMaxAge = 2 * time.Second

// maxCachedSummaries bounds the shared summaries (one per type, top and
// window asked for).
const maxCachedSummaries = 64

type cachedSummary struct {
	at   time.Time
	body []byte
}

func (h *Rejections) cached(key string, now time.Time) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.summaries[key]
	if !ok || now.Sub(e.at) < 0 || now.Sub(e.at) >= summaryMaxAge {
		return nil, false
	}
	return e.body, true
}

func (h *Rejections) keep(key string, now time.Time, body []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.summaries == nil || len(h.summaries) >= maxCachedSummaries {
		h.summaries = map[string]cachedSummary{}
	}
	h.summaries[key] = cachedSummary{at: now, body: body}
}

// maxSummaryWindow bounds a since given as a duration: REJECTIONS keeps 7
// days by default.
const maxSummaryWindow = 31 * 24 * time.Hour

// bodyJSON is a kept body as JSON when it is valid JSON (as sent), else
// as a JSON string.
func bodyJSON(b []byte) json.RawMessage {
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}
