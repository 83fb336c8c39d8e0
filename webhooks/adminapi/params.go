package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/schemas/problem"
	"github.com/kilnhq/kiln/webhooks/delivery"
	"github.com/kilnhq/kiln/webhooks/endpoint"
)

// decode reads an endpoint body: one JSON object of valid UTF-8, nothing
// after it; unknown members are refused, named when the name is short and
// plain (a problem never echoes request bytes at length).
func decode(c *fiber.Ctx) (endpoint.Input, error) {
	var in endpoint.Input
	body, err := httpserver.Body(c)
	if err != nil {
		return in, err
	}
	// encoding/json would replace invalid UTF-8 with U+FFFD in silence.
	if !utf8.Valid(body) {
		return in, problem.Invalid("the endpoint is not valid", []problem.FieldError{{Field: "body", Message: "must be valid UTF-8"}})
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	err = d.Decode(&in)
	if err == nil {
		if _, next := d.Token(); !errors.Is(next, io.EOF) {
			return in, problem.New(http.StatusBadRequest, "malformed-json", "Malformed JSON", "the body is not one JSON object: something follows it")
		}
		return in, nil
	}
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return in, problem.Invalid("the endpoint is not valid", []problem.FieldError{{Field: ute.Field, Message: "has the wrong type"}})
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field := "body"
		if name, err := strconv.Unquote(name); err == nil && memberName.MatchString(name) {
			field = name
		}
		return in, problem.Invalid("the endpoint is not valid", []problem.FieldError{{Field: field,
			Message: "is not a known member (url, filters, description, disabled)"}})
	}
	return in, problem.New(http.StatusBadRequest, "malformed-json", "Malformed JSON", "the body is not one JSON object")
}

// memberName is an unknown member's name that a problem may repeat.
var memberName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// query reads ?status=, ?since= (RFC 3339 or Unix ms, after 1970: a
// redrive of every endpoint needs one) and ?limit= (default 100).
func query(c *fiber.Ctx) (delivery.Query, error) {
	q := delivery.Query{Limit: 100}
	switch s := c.Query("status"); s {
	case "", delivery.StatusSucceeded, delivery.StatusRetrying, delivery.StatusDead:
		q.Status = s
	default:
		return q, problem.Param("status", "must be succeeded, retrying or dead")
	}
	if s := c.Query("since"); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil && t.UnixMilli() > 0 {
			q.Since = t.UnixMilli()
		} else if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 0 {
			q.Since = ms
		} else {
			return q, problem.Param("since", "must be an RFC 3339 time or Unix milliseconds, after 1970")
		}
	}
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return q, problem.Param("limit", "must be between 1 and 1000")
		}
		q.Limit = int64(n)
	}
	return q, nil
}

// endpointQuery is query for the endpoint :id, which must exist.
func (a *API) endpointQuery(c *fiber.Ctx) (delivery.Query, error) {
	q, err := query(c)
	if err != nil {
		return q, err
	}
	q.EndpointID = c.Params("id")
	if _, err := a.Store.Get(c.UserContext(), q.EndpointID); err != nil {
		return q, storeErr(err)
	}
	return q, nil
}

func storeErr(err error) error {
	if errors.Is(err, endpoint.ErrNotFound) || errors.Is(err, delivery.ErrNotFound) {
		return problem.New(http.StatusNotFound, "not-found", "Not found", err.Error())
	}
	return unavailable(err)
}

// unavailable is the 503 for a store that failed; the cause stays out of
// the answer.
func unavailable(error) error {
	return problem.Unavailable("the webhook store did not answer; retry", 1)
}
