package httpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/kilnhq/kiln/schemas/problem"
)

// serverErrors replaces Fiber's handler for errors fasthttp meets before a
// request reaches the router (a malformed request line or header, a body
// over the limit, a read timeout). fasthttp's own messages quote the
// request's header buffer — an Authorization header included — and Fiber
// passes them on as the detail; here every answer is a problem document
// with a fixed detail, and the instance is the request's path only when the
// request line was read and it is valid UTF-8.
func serverErrors(app *fiber.App) {
	// fasthttp resets the request when reading a chunked body fails (over
	// the limit, say), so the path of such a request is noted when its
	// header arrives, by its header (one per pooled request context).
	var chunkedPaths sync.Map // *fasthttp.RequestHeader → string
	app.Server().HeaderReceived = func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
		if h.ContentLength() == -1 {
			chunkedPaths.Store(h, string(pathOf(h.RequestURI())))
		} else {
			chunkedPaths.Delete(h)
		}
		return fasthttp.RequestConfig{}
	}
	app.Server().ErrorHandler = func(fctx *fasthttp.RequestCtx, err error) {
		p := serverProblem(err)
		path := string(fctx.Request.URI().Path())
		if len(fctx.Request.Header.Method()) == 0 {
			path = ""
		}
		if noted, ok := chunkedPaths.LoadAndDelete(&fctx.Request.Header); ok {
			path = noted.(string)
		}
		if path != "" && utf8.ValidString(path) {
			p.Instance = path
		}
		body, merr := json.Marshal(p)
		if merr != nil {
			fctx.SetStatusCode(http.StatusInternalServerError)
			return
		}
		fctx.Response.Reset()
		fctx.SetStatusCode(p.Status)
		fctx.SetContentType(problem.ContentType)
		fctx.SetBody(body)
		fctx.SetConnectionClose() // the rest of the connection cannot be trusted
	}
}

// pathOf is the path of a request URI: up to '?' or '#'.
func pathOf(uri []byte) []byte {
	if i := bytes.IndexAny(uri, "?#"); i >= 0 {
		return uri[:i]
	}
	return uri
}

// serverProblem maps a fasthttp read error to a problem that names what was
// wrong without quoting the request.
func serverProblem(err error) *problem.Details {
	var netErr net.Error
	switch {
	case errors.As(err, new(*fasthttp.ErrSmallBuffer)):
		return problem.New(http.StatusRequestHeaderFieldsTooLarge, "headers-too-large", "Request headers too large",
			"the request line and headers must fit in the server's read buffer")
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return problem.New(http.StatusRequestEntityTooLarge, "too-large", "Request body too large",
			"the request body is larger than the server accepts")
	case errors.As(err, &netErr) && netErr.Timeout(), strings.Contains(err.Error(), "timeout"):
		return problem.New(http.StatusRequestTimeout, "request-timeout", "Request timeout",
			"the request was not received in time")
	}
	return problem.New(http.StatusBadRequest, "malformed-request", "Malformed HTTP request",
		"the request line or a header is not valid HTTP/1.1 (for example a bare LF or a control character in a header value)")
}
