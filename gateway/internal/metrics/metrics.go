// Package metrics defines the gateway's Prometheus collectors: requests and
// their latency by route and status.
package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnhq/kiln/schemas/problem"
)

// HTTP holds the request collectors.
type HTTP struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewHTTP creates the collectors and registers them on reg.
func NewHTTP(reg prometheus.Registerer) (*HTTP, error) {
	m := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kiln", Subsystem: "gateway", Name: "requests_total",
			Help: "Requests answered by the gateway, by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "kiln", Subsystem: "gateway", Name: "request_seconds",
			Help:    "Time to answer a gateway request, by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register gateway metrics: %w", err)
		}
	}
	return m, nil
}

// Observe is route middleware (put first in a route's handler chain, not on
// the whole app, so the route pattern is known and other services' routes
// are not counted) that records each request.
func (m *HTTP) Observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	// fiber's Method aliases fasthttp's request buffer, which the next
	// request on the connection overwrites: a label value kept by the
	// registry must be a copy ("GET" became "POS", and /metrics a 500).
	route, method := c.Route().Path, strings.Clone(c.Method())
	m.requests.WithLabelValues(route, method, strconv.Itoa(statusOf(c, err))).Inc()
	m.latency.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	return err
}

// statusOf is the status the error handler will send for err, mirroring
// httpserver.ErrorHandler.
func statusOf(c *fiber.Ctx, err error) int {
	if err == nil {
		return c.Response().StatusCode()
	}
	var p *problem.Details
	if errors.As(err, &p) {
		return p.Status
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return http.StatusInternalServerError
}
