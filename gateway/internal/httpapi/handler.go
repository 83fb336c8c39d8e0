// Package httpapi is the gateway's HTTP surface: the read API (GET /events,
// GET /events/{id}, GET /metrics), the OpenAPI document and the API docs.
// Handlers are thin: parameters are parsed in params.go and every error is
// a problem document written by httpserver.ErrorHandler.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/problem"
)

// Handler serves the read API.
type Handler struct {
	History  *readmodel.History
	Counters *readmodel.Counters
	// Now is the clock the metrics window ends at.
	Now func() time.Time
	Log *slog.Logger
}

// Header names of GET /events pagination.
const (
	headerNextCursor = "X-Next-Cursor"
	headerLink       = "Link"
)

// storeTimeout bounds one read from MongoDB or Redis; a slower store is a 503.
const storeTimeout = 10 * time.Second

// ListEvents handles GET /events: matching events, newest timestamp first,
// as a bare JSON array (compat), with the next page in X-Next-Cursor and Link.
func (h *Handler) ListEvents(c *fiber.Ctx) error {
	q, err := parseList(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), storeTimeout)
	defer cancel()
	events, next, err := h.History.Find(ctx, q.Query)
	if err != nil {
		return h.storeError(err)
	}
	if events == nil {
		events = []schemas.Event{}
	}
	if next != nil {
		c.Set(headerNextCursor, next.String())
		c.Set(headerLink, nextLink(c.Path(), q.raw, *next))
	}
	return c.JSON(events)
}

// GetEvent handles GET /events/:id. The id is path-escaped by the client, so
// ids with '/' (batch Idempotency-Key ids such as key/0) can be read.
func (h *Handler) GetEvent(c *fiber.Ctx) error {
	id, err := url.PathUnescape(c.Params("id"))
	if err != nil {
		return problem.Param("id", "is not a valid path-escaped event id")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), storeTimeout)
	defer cancel()
	ev, err := h.History.Get(ctx, id)
	if errors.Is(err, readmodel.ErrNotFound) {
		return problem.New(http.StatusNotFound, "event-not-found", "Event not found",
			fmt.Sprintf("no event with id %q", id))
	}
	if err != nil {
		return h.storeError(err)
	}
	return c.JSON(ev)
}

// Metrics handles GET /metrics: the compat counts for the minute up to now
// (by event timestamp) plus Kiln's per-minute series and totals.
func (h *Handler) Metrics(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), storeTimeout)
	defer cancel()
	m, err := h.Counters.Snapshot(ctx, h.Now())
	if err != nil {
		return h.storeError(err)
	}
	return c.JSON(m)
}

// storeError maps a read-model error: a store that is down or too slow is a
// 503 the client may retry; anything else goes to the error handler (500).
// The read model's errors already say what failed.
func (h *Handler) storeError(err error) error {
	var netErr net.Error
	if errors.As(err, &netErr) || mongo.IsNetworkError(err) || mongo.IsTimeout(err) ||
		errors.Is(err, context.DeadlineExceeded) {
		h.Log.Warn("read model unavailable", "err", err)
		return problem.Unavailable("the read model did not answer in time; retry shortly", 1)
	}
	return err
}
