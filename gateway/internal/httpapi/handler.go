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
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/problem"
)

// Handler serves the read API.
type Handler struct {
	History  *readmodel.History
	Counters *readmodel.Counters
	// Recent is the recent-events cache in Redis; GET /events answers from
	// it when it can (nil: always MongoDB).
	Recent *readmodel.Recent
	// Snapshots shares GET /metrics snapshots between requests (nil: one
	// snapshot per request).
	Snapshots *Snapshots
	// HistoryBudget bounds a GET /events query MongoDB answers (0: 5 s).
	HistoryBudget time.Duration
	// Now is the clock the metrics window ends at.
	Now func() time.Time
	Log *slog.Logger

	recentReads recentReads
}

// Header names of GET /events pagination.
const (
	headerNextCursor = "X-Next-Cursor"
	headerLink       = "Link"
)

// storeTimeout bounds one read from MongoDB or Redis; a slower store is a 503.
const storeTimeout = 10 * time.Second

// defaultHistoryBudget bounds a GET /events query answered by MongoDB.
const defaultHistoryBudget = 5 * time.Second

// headerSource names the store that answered GET /events.
const (
	headerSource = "X-Kiln-Source"
	sourceCache  = "cache"
	sourceMongo  = "mongodb"
)

// ListEvents handles GET /events: matching events, newest timestamp first,
// as a bare JSON array (compat), with the next page in X-Next-Cursor and Link.
// The recent-events cache answers when the whole page lies within it, else
// MongoDB, with the same JSON and paging; X-Kiln-Source names the store.
func (h *Handler) ListEvents(c *fiber.Ctx) error {
	q, err := parseList(c)
	if err != nil {
		return err
	}
	if err := scopeList(c, &q); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), storeTimeout)
	defer cancel()
	if h.Recent != nil {
		page, ok, err := h.recentReads.find(ctx, h.Recent, q.Query)
		if err != nil {
			h.Log.Warn("recent cache unavailable; reading MongoDB", "err", err)
		}
		if ok {
			c.Set(headerSource, sourceCache)
			h.setNext(c, q, page.Next)
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Send(page.Body)
		}
	}
	budget := h.HistoryBudget
	if budget == 0 {
		budget = defaultHistoryBudget
	}
	hctx, hcancel := context.WithTimeout(ctx, budget)
	defer hcancel()
	events, next, err := h.History.Find(hctx, q.Query)
	if err != nil {
		if (errors.Is(err, context.DeadlineExceeded) || maxTimeExpired(err)) && c.UserContext().Err() == nil && !unreachable(err) {
			return h.overBudget(budget, err)
		}
		return h.storeError(err)
	}
	if events == nil {
		events = []schemas.Event{}
	}
	c.Set(headerSource, sourceMongo)
	h.setNext(c, q, next)
	return c.JSON(events)
}

func (h *Handler) setNext(c *fiber.Ctx, q listQuery, next *readmodel.Cursor) {
	if next != nil {
		c.Set(headerNextCursor, next.String())
		c.Set(headerLink, nextLink(c.Path(), q.raw, *next))
	}
}

// maxTimeExpired reports the store stopping the query at the budget the
// find carried (maxTimeMS), which may come back before the deadline does.
func maxTimeExpired(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.IsMaxTimeMSExpiredError()
}

// unreachable reports a deadline spent finding a server (the store is down),
// not running the query.
func unreachable(err error) bool {
	var sse topology.ServerSelectionError
	return errors.As(err, &sse)
}

// overBudget is the answer to a query the cache cannot answer and MongoDB
// did not answer within the budget: on the embedded store every filter
// and sort reads every document.
func (h *Handler) overBudget(budget time.Duration, err error) error {
	h.Log.Warn("history query over budget", "budget", budget, "err", err)
	p := problem.New(http.StatusServiceUnavailable, "query-over-budget", "Query over budget", fmt.Sprintf("this query reaches past the recent-events cache and the history store "+
		"did not answer it within %s (on the embedded store every filtered or sorted query reads every stored event); "+
		"narrow it to recent events with from/to, or retry later", budget))
	p.RetryAfter = 5
	return p
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
	if t := tokenOf(c); err == nil && t != nil && !t.Allows(ev.EventType, ev.UserID) {
		err = readmodel.ErrNotFound // outside the token: as if it were not there
	}
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
// (by event timestamp) plus Kiln's per-minute series and totals. Snapshots
// are shared for a short while; "now" and "asOfSeq" say how old one is.
func (h *Handler) Metrics(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), storeTimeout)
	defer cancel()
	if h.Snapshots != nil {
		body, err := h.Snapshots.Get(ctx)
		if err != nil {
			return h.storeError(err)
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(body)
	}
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
