// Package adminapi is the webhooks admin API: endpoints (create, list,
// get, change, disable, delete, rotate the secret, send a test event) and
// their delivery log and redrive. Every route needs an admin key when
// KILN_ADMIN_KEYS is set.
package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/schemas/problem"
	"github.com/kilnhq/kiln/webhooks/delivery"
	"github.com/kilnhq/kiln/webhooks/endpoint"
)

// API serves the admin routes.
type API struct {
	Keys     httpserver.Keys
	Store    *endpoint.Store
	Cache    *endpoint.Cache
	Log      *delivery.Log
	Redriver *delivery.Redriver
	Sender   *delivery.Sender
	// Overlap is how long a rotated-out secret keeps signing.
	Overlap time.Duration
}

// The admin API's path prefixes.
const (
	endpointsPath  = "/webhook-endpoints"
	deliveriesPath = "/webhook-deliveries"
)

// Prefixes are the admin API's path prefixes: server-to-server routes,
// which browsers reach only from an origin listed explicitly in
// KILN_ALLOWED_ORIGINS ("*" does not open them).
func Prefixes() []string { return []string{endpointsPath, deliveriesPath} }

// Register mounts the routes on r.
func (a *API) Register(r fiber.Router) {
	auth := httpserver.RequireKey(a.Keys, false)
	const ep, d = endpointsPath, deliveriesPath
	r.Post(ep, auth, a.create)
	r.Get(ep, auth, a.list)
	r.Get(ep+"/:id", auth, a.get)
	r.Patch(ep+"/:id", auth, a.update)
	r.Delete(ep+"/:id", auth, a.delete)
	r.Post(ep+"/:id/disable", auth, a.disable)
	r.Post(ep+"/:id/enable", auth, a.enable)
	r.Post(ep+"/:id/rotate-secret", auth, a.rotate)
	r.Post(ep+"/:id/test", auth, a.test)
	r.Get(ep+"/:id/deliveries", auth, a.deliveries)
	r.Post(ep+"/:id/redrive", auth, a.redriveEndpoint)
	r.Post(d+"/redrive", auth, a.redriveAll)
	r.Get(d+"/:id", auth, a.delivery)
	r.Post(d+"/:id/redrive", auth, a.redriveOne)
}

// view is an endpoint as the API shows it: never its secrets, except the
// new one right after create or rotate.
type view struct {
	*endpoint.Endpoint
	Secret                  string `json:"secret,omitempty"`
	PreviousSecretExpiresAt int64  `json:"previousSecretExpiresAt,omitempty"`
}

func (a *API) show(e *endpoint.Endpoint, secret string) view {
	return view{Endpoint: e, Secret: secret, PreviousSecretExpiresAt: e.PreviousSecretExpiresAt(time.Now())}
}

func (a *API) create(c *fiber.Ctx) error {
	in, err := decode(c)
	if err != nil {
		return err
	}
	if p := in.Check(true); p != nil {
		return p
	}
	e, secret, err := a.Store.Create(c.UserContext(), in)
	if err != nil {
		return unavailable(err)
	}
	a.Cache.Invalidate()
	c.Location("/webhook-endpoints/" + e.ID)
	return c.Status(http.StatusCreated).JSON(a.show(e, secret))
}

func (a *API) list(c *fiber.Ctx) error {
	all, err := a.Store.List(c.UserContext())
	if err != nil {
		return unavailable(err)
	}
	out := make([]view, len(all))
	for i, e := range all {
		out[i] = a.show(e, "")
	}
	return c.JSON(fiber.Map{"endpoints": out})
}

func (a *API) get(c *fiber.Ctx) error {
	e, err := a.Store.Get(c.UserContext(), c.Params("id"))
	if err != nil {
		return storeErr(err)
	}
	return c.JSON(a.show(e, ""))
}

func (a *API) update(c *fiber.Ctx) error {
	in, err := decode(c)
	if err != nil {
		return err
	}
	if p := in.Check(false); p != nil {
		return p
	}
	return a.change(c, in)
}

func (a *API) disable(c *fiber.Ctx) error {
	t := true
	return a.change(c, endpoint.Input{Disabled: &t})
}

func (a *API) enable(c *fiber.Ctx) error {
	f := false
	return a.change(c, endpoint.Input{Disabled: &f})
}

func (a *API) change(c *fiber.Ctx, in endpoint.Input) error {
	e, err := a.Store.Update(c.UserContext(), c.Params("id"), in)
	if err != nil {
		return storeErr(err)
	}
	a.Cache.Invalidate()
	return c.JSON(a.show(e, ""))
}

func (a *API) delete(c *fiber.Ctx) error {
	if err := a.Store.Delete(c.UserContext(), c.Params("id")); err != nil {
		return storeErr(err)
	}
	a.Cache.Invalidate()
	return c.SendStatus(http.StatusNoContent)
}

func (a *API) rotate(c *fiber.Ctx) error {
	e, secret, err := a.Store.Rotate(c.UserContext(), c.Params("id"), a.Overlap)
	if err != nil {
		return storeErr(err)
	}
	a.Cache.Invalidate()
	return c.JSON(a.show(e, secret))
}

// test sends a signed test event now, outside the queue, and answers with
// the attempt.
func (a *API) test(c *fiber.Ctx) error {
	e, err := a.Store.Get(c.UserContext(), c.Params("id"))
	if err != nil {
		return storeErr(err)
	}
	now := time.Now()
	id := "msg_test_" + strconv.FormatInt(now.UnixNano(), 36)
	body, _ := json.Marshal(fiber.Map{"type": "kiln.webhook.test", "timestamp": now.UTC().Format(time.RFC3339Nano),
		"data": fiber.Map{"endpointId": e.ID, "message": "a test event from Kiln"}})
	att := a.Sender.Send(context.WithoutCancel(c.UserContext()), e, id, body)
	return c.JSON(fiber.Map{"webhookId": id, "ok": att.OK(), "attempt": att})
}

func (a *API) deliveries(c *fiber.Ctx) error {
	q, err := a.endpointQuery(c)
	if err != nil {
		return err
	}
	recs, err := a.Log.Find(c.UserContext(), q)
	if err != nil {
		return unavailable(err)
	}
	return c.JSON(fiber.Map{"deliveries": recs})
}

func (a *API) delivery(c *fiber.Ctx) error {
	rec, err := a.Log.Get(c.UserContext(), c.Params("id"))
	if err != nil {
		return storeErr(err)
	}
	return c.JSON(rec)
}

func (a *API) redriveOne(c *fiber.Ctx) error {
	err := a.Redriver.One(c.UserContext(), c.Params("id"))
	if errors.Is(err, delivery.ErrNotDead) {
		return problem.New(http.StatusConflict, "not-dead", "Delivery not dead", err.Error())
	}
	if err != nil {
		return storeErr(err)
	}
	return c.Status(http.StatusAccepted).JSON(fiber.Map{"redriven": 1})
}

func (a *API) redriveEndpoint(c *fiber.Ctx) error {
	q, err := a.endpointQuery(c)
	if err != nil {
		return err
	}
	return a.redriveMany(c, q)
}

func (a *API) redriveAll(c *fiber.Ctx) error {
	q, err := query(c)
	if err != nil {
		return err
	}
	if q.Since == 0 {
		return problem.Param("since", "is required (RFC 3339 or Unix ms) to redrive every endpoint's dead deliveries")
	}
	return a.redriveMany(c, q)
}

func (a *API) redriveMany(c *fiber.Ctx, q delivery.Query) error {
	q.Limit = 0
	n, err := a.Redriver.Many(c.UserContext(), q)
	if err != nil {
		return unavailable(err)
	}
	return c.Status(http.StatusAccepted).JSON(fiber.Map{"redriven": n})
}
