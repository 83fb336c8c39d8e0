package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/schemas/problem"
	"github.com/kilnhq/kiln/webhooks/delivery"
	"github.com/kilnhq/kiln/webhooks/endpoint"
)

// decode reads an endpoint body; unknown members are refused.
func decode(c *fiber.Ctx) (endpoint.Input, error) {
	var in endpoint.Input
	body, err := httpserver.Body(c)
	if err != nil {
		return in, err
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&in); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return in, problem.Invalid("the endpoint is not valid", []problem.FieldError{{Field: ute.Field, Message: "has the wrong type"}})
		}
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return in, problem.Invalid("the endpoint is not valid", []problem.FieldError{{Field: field, Message: "is not a known member"}})
		}
		return in, problem.New(http.StatusBadRequest, "malformed-json", "Malformed JSON", "the body is not one JSON object")
	}
	return in, nil
}

// query reads ?status=, ?since= (RFC 3339 or Unix ms) and ?limit= (default 100).
func query(c *fiber.Ctx) (delivery.Query, error) {
	q := delivery.Query{Limit: 100}
	switch s := c.Query("status"); s {
	case "", delivery.StatusSucceeded, delivery.StatusRetrying, delivery.StatusDead:
		q.Status = s
	default:
		return q, problem.Param("status", "must be succeeded, retrying or dead")
	}
	if s := c.Query("since"); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			q.Since = t.UnixMilli()
		} else if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 0 {
			q.Since = ms
		} else {
			return q, problem.Param("since", "must be an RFC 3339 time or Unix milliseconds")
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
