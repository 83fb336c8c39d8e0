// Package fibertrace traces Fiber requests: a server span per request,
// child of the caller's W3C traceparent when it sends one, carried to the
// handler in the request's user context.
package fibertrace

import (
	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/kilnhq/kiln/telemetry"
)

// requestCarrier reads the trace headers of a fasthttp request.
type requestCarrier struct{ c *fiber.Ctx }

func (r requestCarrier) Get(key string) string { return r.c.Get(key) }
func (r requestCarrier) Set(string, string)    {}
func (r requestCarrier) Keys() []string        { return []string{"traceparent", "tracestate"} }

// Middleware returns a handler that starts a server span named
// "<method> <route>" (route is the pattern, e.g. "POST /events") around the
// rest of the chain. With a no-op provider it only passes through.
func Middleware(tp trace.TracerProvider, route string) fiber.Handler {
	tracer := telemetry.Tracer(tp, "github.com/kilnhq/kiln/telemetry/fibertrace")
	if !telemetry.Enabled(tp) {
		return func(c *fiber.Ctx) error { return c.Next() }
	}
	return func(c *fiber.Ctx) error {
		ctx := telemetry.Propagator().Extract(c.UserContext(), requestCarrier{c})
		ctx, span := tracer.Start(ctx, c.Method()+" "+route, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", c.Method()), attribute.String("http.route", route)))
		defer span.End()
		c.SetUserContext(ctx)
		err := c.Next()
		if err != nil {
			// The app's error handler writes the status after the chain.
			span.SetStatus(codes.Error, err.Error())
			return err
		}
		span.SetAttributes(attribute.Int("http.response.status_code", c.Response().StatusCode()))
		return nil
	}
}
