// Package schemaapi is the schema registry's HTTP surface: the event types'
// JSON Schema versions (GET /schemas…), a new version (POST /schemas/{type},
// checked against the previous version's compatibility rules and the stored
// events) and a type's settings (PUT /schemas/{type}/settings). Writes need
// an admin key.
package schemaapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/schemas/problem"
)

// API serves the registry.
type API struct {
	// Catalog opens the registry (on first use: NATS may start later).
	Catalog *catalog.Opener
	// DefaultMode is the compatibility mode of a type with none of its own.
	DefaultMode catalog.Mode
	// DefaultEnforcement is the enforcement of a type with none of its own.
	DefaultEnforcement catalog.Enforcement
	// Stored reads a type's most recent stored events for the checks.
	Stored catalog.Stored
	// Sample is how many stored events a new version is checked against
	// by default (the "sample" parameter changes it per request).
	Sample int
	// Activity adds what the read models say to GET /schemas (nil: not).
	Activity ActivityFunc
	// Read guards the GET routes; Admin the writes.
	Read, Admin fiber.Handler
	Log         *slog.Logger
}

// maxSample bounds the "sample" parameter.
const maxSample = 100_000

// timeout bounds one request's work on the stores.
const timeout = 30 * time.Second

// Register mounts the routes, each behind observe (the gateway's request
// metrics) and its guard.
func (a *API) Register(r fiber.Router, observe fiber.Handler) {
	r.Get("/schemas", observe, a.Read, a.list)
	r.Get("/schemas/:type", observe, a.Read, a.latest)
	r.Get("/schemas/:type/versions", observe, a.Read, a.versions)
	r.Get("/schemas/:type/versions/:n", observe, a.Read, a.version)
	r.Post("/schemas/:type", observe, a.Admin, a.push)
	r.Get("/schemas/:type/settings", observe, a.Read, a.settings)
	r.Put("/schemas/:type/settings", observe, a.Admin, a.putSettings)
}

// typeSummary is one entry of GET /schemas. The read models' fields are
// absent when they did not answer.
type typeSummary struct {
	Type          string              `json:"type"`
	Latest        int                 `json:"latest"`
	Compatibility catalog.Mode        `json:"compatibility"`
	Enforcement   catalog.Enforcement `json:"enforcement"`
	// LastSeen and LastReceived: the newest stored event in the recent
	// cache (absent when it holds none of the type).
	LastSeen     int64  `json:"lastSeen,omitempty"`
	LastReceived int64  `json:"lastReceived,omitempty"`
	LastMinute   *int64 `json:"lastMinute,omitempty"`
	Stored       *int64 `json:"stored,omitempty"`
}

func (a *API) list(c *fiber.Ctx) error {
	ctx, cancel, cat, err := a.open(c)
	if err != nil {
		return err
	}
	defer cancel()
	types, err := cat.Types(ctx)
	if err != nil {
		return a.unavailable(err)
	}
	out := make([]typeSummary, 0, len(types))
	for _, t := range slices.Sorted(maps.Keys(types)) {
		st, err := cat.Settings(ctx, t)
		if err != nil {
			return a.unavailable(err)
		}
		out = append(out, typeSummary{Type: t, Latest: types[t], Compatibility: a.mode(st), Enforcement: a.enforcement(st)})
	}
	a.addActivity(ctx, out)
	return c.JSON(out)
}

// addActivity fills the read models' fields of out, leaving them out when
// the read models do not answer: the registry is read without them.
func (a *API) addActivity(ctx context.Context, out []typeSummary) {
	if a.Activity == nil || len(out) == 0 {
		return
	}
	types := make([]string, len(out))
	for i, s := range out {
		types[i] = s.Type
	}
	ctx, cancel := context.WithTimeout(ctx, activityTimeout)
	defer cancel()
	act, err := a.Activity(ctx, types)
	if err != nil {
		a.Log.Warn("schemas: read models unavailable; listing without activity", "err", err)
		return
	}
	for i := range out {
		x := act[out[i].Type]
		out[i].LastSeen, out[i].LastReceived = x.LastSeen, x.LastReceived
		out[i].LastMinute, out[i].Stored = &x.LastMinute, &x.Stored
	}
}

// activityTimeout bounds the read models' part of GET /schemas.
const activityTimeout = 5 * time.Second

func (a *API) latest(c *fiber.Ctx) error {
	ctx, cancel, cat, t, err := a.typed(c)
	if err != nil {
		return err
	}
	defer cancel()
	v, ok, err := cat.Latest(ctx, t)
	if err != nil {
		return a.unavailable(err)
	}
	if !ok {
		return notFound(t)
	}
	return c.JSON(v)
}

func (a *API) versions(c *fiber.Ctx) error {
	ctx, cancel, cat, t, err := a.typed(c)
	if err != nil {
		return err
	}
	defer cancel()
	vs, err := cat.Versions(ctx, t)
	if err != nil {
		return a.unavailable(err)
	}
	if len(vs) == 0 {
		return notFound(t)
	}
	return c.JSON(vs)
}

func (a *API) version(c *fiber.Ctx) error {
	n, err := strconv.Atoi(c.Params("n"))
	if err != nil || n < 1 {
		return problem.Param("n", "must be a version number from 1")
	}
	ctx, cancel, cat, t, err := a.typed(c)
	if err != nil {
		return err
	}
	defer cancel()
	vs, err := cat.Versions(ctx, t)
	if err != nil {
		return a.unavailable(err)
	}
	if n > len(vs) {
		return problem.New(http.StatusNotFound, "not-found", "Not found", fmt.Sprintf("%s has %d versions", t, len(vs)))
	}
	return c.JSON(vs[n-1])
}

// refusal is the 409 of a change the checks refuse: the rules it breaks
// and the stored events it would refuse.
type refusal struct {
	problem.Details
	Decision catalog.Decision `json:"decision"`
}

func (a *API) push(c *fiber.Ctx) error {
	q, err := parsePush(c, a.Sample)
	if err != nil {
		return err
	}
	body, err := httpserver.Body(c)
	if err != nil {
		return err
	}
	if len(body) > catalog.MaxDocumentBytes {
		return problem.New(http.StatusRequestEntityTooLarge, "too-large", "Request body too large",
			fmt.Sprintf("a schema is at most %d bytes", catalog.MaxDocumentBytes))
	}
	ctx, cancel, cat, t, err := a.typed(c)
	if err != nil {
		return err
	}
	defer cancel()
	d, err := cat.Propose(ctx, catalog.Proposal{Type: t, Schema: body, DryRun: q.dryRun, Force: q.force, Reason: q.reason},
		a.DefaultMode, a.Stored, q.sample)
	switch {
	case errors.Is(err, catalog.ErrInvalidSchema):
		p := problem.New(http.StatusUnprocessableEntity, "invalid-schema", "Invalid schema", err.Error())
		p.Errors = []problem.FieldError{{Field: "schema", Message: err.Error()}}
		return p
	case errors.Is(err, catalog.ErrReasonRequired):
		return problem.Param("reason", "a forced change needs a reason, kept with the version")
	case errors.Is(err, catalog.ErrConflict):
		return problem.New(http.StatusConflict, "schema-conflict", "Schema changed meanwhile", err.Error()+"; check again against the new latest version")
	case err != nil:
		return a.unavailable(err)
	case d.Refused:
		r := refusal{Details: *problem.New(http.StatusConflict, "schema-incompatible", "Schema change refused",
			fmt.Sprintf("version %d of %s breaks %d rule(s) of %s and would refuse %d of %d stored events; "+
				"force=true with a reason registers it anyway", d.Version.Version, t, broken(d.Changes), d.Mode, d.History.Failing, d.History.Checked)),
			Decision: d}
		r.Instance = c.Path()
		return c.Status(http.StatusConflict).JSON(r, problem.ContentType)
	case d.Registered:
		c.Location(fmt.Sprintf("/schemas/%s/versions/%d", t, d.Version.Version))
		return c.Status(http.StatusCreated).JSON(d)
	}
	return c.JSON(d) // a dry run, or unchanged
}

func broken(cs []catalog.Change) int {
	n := 0
	for _, c := range cs {
		if c.Breaks != "UNDECIDED" {
			n++
		}
	}
	return n
}

func (a *API) settings(c *fiber.Ctx) error {
	ctx, cancel, cat, t, err := a.typed(c)
	if err != nil {
		return err
	}
	defer cancel()
	st, err := cat.Settings(ctx, t)
	if err != nil {
		return a.unavailable(err)
	}
	st.Compatibility, st.Enforcement = a.mode(st), a.enforcement(st)
	return c.JSON(st)
}

func (a *API) putSettings(c *fiber.Ctx) error {
	body, err := httpserver.Body(c)
	if err != nil {
		return err
	}
	var in struct {
		Compatibility string `json:"compatibility"`
		Enforcement   string `json:"enforcement"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return problem.New(http.StatusBadRequest, "invalid-body", "Invalid body", "a JSON object with compatibility and enforcement")
	}
	var st catalog.Settings
	if in.Compatibility != "" {
		if st.Compatibility, err = catalog.ParseMode(in.Compatibility); err != nil {
			return problem.Param("compatibility", err.Error())
		}
	}
	if in.Enforcement != "" {
		if st.Enforcement, err = catalog.ParseEnforcement(in.Enforcement); err != nil {
			return problem.Param("enforcement", err.Error())
		}
	}
	ctx, cancel, cat, t, err := a.typed(c)
	if err != nil {
		return err
	}
	defer cancel()
	st.Type = t
	if err := cat.SetSettings(ctx, st); err != nil {
		return a.unavailable(err)
	}
	return a.settings(c)
}

func (a *API) mode(st catalog.Settings) catalog.Mode {
	if st.Compatibility != "" {
		return st.Compatibility
	}
	return a.DefaultMode
}

func (a *API) enforcement(st catalog.Settings) catalog.Enforcement {
	if st.Enforcement != "" {
		return st.Enforcement
	}
	return a.DefaultEnforcement
}

type pushParams struct {
	dryRun, force bool
	reason        string
	sample        int
}

func parsePush(c *fiber.Ctx, sample int) (pushParams, error) {
	p := pushParams{reason: c.Query("reason"), sample: sample}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"dryRun", &p.dryRun}, {"force", &p.force}} {
		if s := c.Query(b.name); s != "" {
			v, err := strconv.ParseBool(s)
			if err != nil {
				return p, problem.Param(b.name, "must be true or false")
			}
			*b.dst = v
		}
	}
	if s := c.Query("sample"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxSample {
			return p, problem.Param("sample", fmt.Sprintf("must be a number of stored events from 0 to %d", maxSample))
		}
		p.sample = n
	}
	if len(p.reason) > 1024 {
		return p, problem.Param("reason", "at most 1024 characters")
	}
	return p, nil
}

// open bounds the request's work by timeout and opens the registry; the
// caller calls cancel.
func (a *API) open(c *fiber.Ctx) (context.Context, context.CancelFunc, *catalog.Catalog, error) {
	ctx, cancel := context.WithTimeout(c.UserContext(), timeout)
	cat, err := a.Catalog.Get(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil, a.unavailable(err)
	}
	return ctx, cancel, cat, nil
}

// typed is open for a route with a :type, which it checks first.
func (a *API) typed(c *fiber.Ctx) (context.Context, context.CancelFunc, *catalog.Catalog, string, error) {
	t, err := typeParam(c)
	if err != nil {
		return nil, nil, nil, "", err
	}
	ctx, cancel, cat, err := a.open(c)
	return ctx, cancel, cat, t, err
}

func typeParam(c *fiber.Ctx) (string, error) {
	t := c.Params("type")
	if err := catalog.CheckType(t); err != nil {
		return "", problem.Param("type", err.Error())
	}
	return t, nil
}

func notFound(t string) error {
	return problem.New(http.StatusNotFound, "not-found", "Not found", fmt.Sprintf("no schema is registered for %s", t))
}

// unavailable is the 503 of a registry (NATS) or store that did not
// answer; the cause stays out of the answer (it may name internal
// addresses).
func (a *API) unavailable(err error) error {
	a.Log.Warn("schema registry request failed", "err", err)
	return problem.Unavailable("the schema registry or the event store did not answer; try again", 1)
}
