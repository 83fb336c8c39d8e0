package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/problem"
)

// Limits of GET /events.
const (
	defaultLimit = 50
	maxLimit     = 1000
	maxTypes     = 100
	maxTypeLen   = 128
	maxUserIDLen = 256
)

// listQuery is a parsed GET /events query.
type listQuery struct {
	readmodel.Query
	raw url.Values // the filters as sent, for the next page's Link
}

// paramErrors collects every bad parameter of a request.
type paramErrors []problem.FieldError

func (e *paramErrors) add(field, format string, args ...any) {
	*e = append(*e, problem.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// err is the 400 naming every bad parameter, or nil.
func (e paramErrors) err() error {
	if len(e) == 0 {
		return nil
	}
	if len(e) == 1 {
		return problem.Param(e[0].Field, e[0].Message)
	}
	names := make([]string, len(e))
	for i, fe := range e {
		names[i] = fe.Field
	}
	p := problem.New(http.StatusBadRequest, "invalid-parameter", "Invalid parameter",
		"invalid parameters: "+strings.Join(names, ", "))
	p.Errors = e
	return p
}

// queryArgs returns the query string as name → values, in order.
func queryArgs(c *fiber.Ctx) url.Values {
	args := url.Values{}
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		args[string(k)] = append(args[string(k)], string(v))
	})
	return args
}

// listParams are the parameters GET /events reads, in Link order;
// access_token (auth) is accepted too but never echoed.
func listParams() []string {
	return []string{"type", "userId", "from", "to", "limit", "cursor"}
}

// parseList reads the GET /events query and names every bad parameter.
// Empty values count as absent.
func parseList(c *fiber.Ctx) (listQuery, error) {
	args := queryArgs(c)
	q := listQuery{Query: readmodel.Query{Limit: defaultLimit}, raw: url.Values{}}
	var errs paramErrors
	var unknown []string
	for name := range args {
		if name != "access_token" && !slices.Contains(listParams(), name) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		errs.add(name, "is not a parameter of this endpoint (allowed: %s)", strings.Join(listParams(), ", "))
	}
	for _, name := range listParams() {
		vals := slices.DeleteFunc(slices.Clone(args[name]), func(v string) bool { return v == "" })
		switch {
		case len(vals) == 0:
		case name != "type" && len(vals) > 1:
			errs.add(name, "must be given at most once")
		default:
			q.raw[name] = vals
			q.set(name, vals, &errs)
		}
	}
	if q.From > 0 && q.To > 0 && q.From > q.To {
		errs.add("from", "must not be after to")
	}
	if err := errs.err(); err != nil {
		return listQuery{}, err
	}
	return q, nil
}

// set reads one parameter's values into q.
func (q *listQuery) set(name string, vals []string, errs *paramErrors) {
	switch name {
	case "type":
		q.Types = parseTypes(vals, errs)
	case "userId":
		if len(vals[0]) > maxUserIDLen {
			errs.add(name, "must be at most %d characters", maxUserIDLen)
		}
		q.UserID = vals[0]
	case "from":
		q.From = parseTime(name, vals[0], errs)
	case "to":
		q.To = parseTime(name, vals[0], errs)
	case "limit":
		n, err := strconv.Atoi(vals[0])
		if err != nil || n < 1 || n > maxLimit {
			errs.add(name, "must be an integer from 1 to %d, got %q", maxLimit, vals[0])
		}
		q.Limit = n
	case "cursor":
		cur, err := readmodel.ParseCursor(vals[0])
		if err != nil {
			errs.add(name, "is not a cursor from X-Next-Cursor or Link")
		}
		q.After = &cur
	}
}

func parseTypes(vals []string, errs *paramErrors) []string {
	if len(vals) > maxTypes {
		errs.add("type", "may be given at most %d times", maxTypes)
		return nil
	}
	for _, t := range vals {
		if len(t) > maxTypeLen || !isEventType(t) {
			errs.add("type", "%q is not an event type: 1-%d characters, dot-separated tokens of letters, digits, '_' or '-'; repeat type for several types", t, maxTypeLen)
		}
	}
	return vals
}

// isEventType matches the envelope's eventType pattern
// ^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$ (schemas/json/envelope.json).
func isEventType(s string) bool {
	for token := range strings.SplitSeq(s, ".") {
		if token == "" {
			return false
		}
		for _, r := range token {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
			if !ok {
				return false
			}
		}
	}
	return true
}

// parseTime reads a from/to bound: an integer read like an event timestamp
// (below 1e10 seconds, otherwise milliseconds), or an RFC 3339 time.
func parseTime(name, v string, errs *paramErrors) int64 {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 1 || n > maxTimestamp {
			errs.add(name, "must be a positive Unix time in ms (or s below 1e10), got %d", n)
			return 0
		}
		return schemas.TimestampMillis(float64(n))
	}
	// An unencoded '+' of a zone offset arrives as a space.
	t, err := time.Parse(time.RFC3339Nano, strings.Replace(v, " ", "+", 1))
	if err != nil || t.UnixMilli() < 1 || t.UnixMilli() > maxTimestamp {
		errs.add(name, "must be Unix ms or an RFC 3339 time (2026-01-02T15:04:05Z), got %q", v)
		return 0
	}
	return t.UnixMilli()
}

// maxTimestamp is the envelope's largest timestamp (year 9999, in ms).
const maxTimestamp = 253402300799999

// nextLink is the Link header value of the next page: the same filters
// as sent, plus its cursor.
func nextLink(path string, raw url.Values, next readmodel.Cursor) string {
	v := url.Values{}
	for name, vals := range raw {
		if name != "cursor" {
			v[name] = vals
		}
	}
	v.Set("cursor", next.String())
	return "<" + path + "?" + v.Encode() + `>; rel="next"`
}
