// Package httpserver builds Kiln's Fiber servers the same way in every
// service: problem+json errors, API-key auth, health endpoints, the admin
// listener with Prometheus metrics, and graceful shutdown.
package httpserver

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/schemas/problem"
)

// WriteProblem sends a problem document with its status, and a Retry-After
// header when the problem carries one.
func WriteProblem(c *fiber.Ctx, p *problem.Details) error {
	if p.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(p.RetryAfter))
	}
	if p.Instance == "" {
		p.Instance = c.Path()
	}
	c.Status(p.Status)
	c.Set(fiber.HeaderContentType, problem.ContentType)
	return c.JSON(p, problem.ContentType)
}

// ErrorHandler is the one place errors become responses: problem details are
// sent as they are, Fiber's own errors (404, 405, 413…) keep their status, and
// anything else is a logged 500 whose detail is not leaked.
func ErrorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		var p *problem.Details
		if errors.As(err, &p) {
			return WriteProblem(c, p)
		}
		var fe *fiber.Error
		if errors.As(err, &fe) {
			return WriteProblem(c, fiberProblem(fe))
		}
		log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
		return WriteProblem(c, problem.New(http.StatusInternalServerError, "internal", "Internal server error",
			"the request failed on the server; it has been logged"))
	}
}

func fiberProblem(fe *fiber.Error) *problem.Details {
	switch fe.Code {
	case http.StatusRequestEntityTooLarge:
		return problem.New(fe.Code, "too-large", "Request body too large", fe.Message)
	case http.StatusNotFound:
		return problem.New(fe.Code, "not-found", "Not found", fe.Message)
	case http.StatusMethodNotAllowed:
		return problem.New(fe.Code, "method-not-allowed", "Method not allowed", fe.Message)
	}
	return problem.New(fe.Code, "http-"+strconv.Itoa(fe.Code), http.StatusText(fe.Code), fe.Message)
}
