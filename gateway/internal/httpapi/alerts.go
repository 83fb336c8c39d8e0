package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/readmodel"
)

// Alerts serves GET /alerts: the notifier's decided alerts and their
// delivery status, from the alerts read model.
type Alerts struct {
	Store *readmodel.Alerts
	Log   *slog.Logger
}

// Limits of GET /alerts.
const (
	maxRuleLen    = 128
	maxChannelLen = 64
)

// alertStatuses are the values of the status filter.
func alertStatuses() []string {
	return []string{readmodel.DeliveryPending, readmodel.DeliveryRetrying, readmodel.DeliverySent, readmodel.DeliveryDead}
}

// alertParams are the parameters GET /alerts reads, in Link order;
// access_token (auth) is accepted too but never echoed.
func alertParams() []string {
	return []string{"rule", "channel", "status", "before", "limit", "cursor"}
}

// alertsQuery is a parsed GET /alerts query.
type alertsQuery struct {
	readmodel.AlertFilter
	raw url.Values // the filters as sent, for the next page's Link
}

// List handles GET /alerts: alerts newest first as a bare JSON array (as
// GET /events), with the next page in X-Next-Cursor and Link.
func (a *Alerts) List(c *fiber.Ctx) error {
	q, err := parseAlerts(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), storeTimeout)
	defer cancel()
	alerts, next, err := a.Store.Find(ctx, q.AlertFilter)
	if err != nil {
		return (&Handler{Log: a.Log}).storeError(err)
	}
	out := make([]readmodel.AlertView, len(alerts))
	for i, al := range alerts {
		out[i] = al.View()
	}
	if next != nil {
		c.Set(headerNextCursor, next.String())
		c.Set(headerLink, pageLink(c.Path(), q.raw, next.String()))
	}
	return c.JSON(out)
}

// parseAlerts reads the GET /alerts query and names every bad parameter.
// Empty values count as absent.
func parseAlerts(c *fiber.Ctx) (alertsQuery, error) {
	args := queryArgs(c)
	q := alertsQuery{AlertFilter: readmodel.AlertFilter{Limit: defaultLimit}, raw: url.Values{}}
	var errs paramErrors
	var unknown []string
	for name := range args {
		if name != "access_token" && !slices.Contains(alertParams(), name) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		errs.add(name, "is not a parameter of this endpoint (allowed: %s)", strings.Join(alertParams(), ", "))
	}
	for _, name := range alertParams() {
		vals := slices.DeleteFunc(slices.Clone(args[name]), func(v string) bool { return v == "" })
		switch {
		case len(vals) == 0:
		case len(vals) > 1:
			errs.add(name, "must be given at most once")
		default:
			q.raw[name] = vals
			q.set(name, vals[0], &errs)
		}
	}
	if err := errs.err(); err != nil {
		return alertsQuery{}, err
	}
	return q, nil
}

// set reads one parameter into q.
func (q *alertsQuery) set(name, v string, errs *paramErrors) {
	switch name {
	case "rule":
		if len(v) > maxRuleLen {
			errs.add(name, "must be at most %d characters", maxRuleLen)
		}
		q.Rule = v
	case "channel":
		if len(v) > maxChannelLen || !isChannelName(v) {
			errs.add(name, "must be a channel name such as slack, email or log, got %q", v)
		}
		q.Channel = v
	case "status":
		if !slices.Contains(alertStatuses(), v) {
			errs.add(name, "must be one of %s, got %q", strings.Join(alertStatuses(), ", "), v)
		}
		q.Status = v
	case "before":
		q.Before = parseTime(name, v, errs)
	case "limit":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			errs.add(name, "must be an integer from 1 to %d, got %q", maxLimit, v)
		}
		q.Limit = n
	case "cursor":
		cur, err := readmodel.ParseAlertCursor(v)
		if err != nil {
			errs.add(name, "is not a cursor from X-Next-Cursor or Link")
		}
		q.After = &cur
	}
}

// isChannelName reports whether s is lower-case letters, digits, '-' or '_'.
func isChannelName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return s != ""
}

// pageLink is the Link header value of the next page: the same filters as
// sent, plus its cursor.
func pageLink(path string, raw url.Values, cursor string) string {
	v := url.Values{}
	for name, vals := range raw {
		if name != "cursor" {
			v[name] = vals
		}
	}
	v.Set("cursor", cursor)
	return fmt.Sprintf("<%s?%s>; rel=\"next\"", path, v.Encode())
}
