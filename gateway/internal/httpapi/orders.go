package httpapi

import (
	"context"
	"log/slog"
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/readmodel"
)

// Orders serves GET /orders: the current orders, from the orders read
// model the projector builds from the order.* events (what gRPC GetOrders
// streams).
type Orders struct {
	Store *readmodel.Orders
	Log   *slog.Logger
}

// maxStatusLen bounds the status filter.
const maxStatusLen = 64

// OrderView is one order of GET /orders.
type OrderView struct {
	ID            string  `json:"id"`
	Status        string  `json:"status"`
	Amount        float64 `json:"amount"`
	Currency      string  `json:"currency,omitempty"`
	CustomerEmail string  `json:"customerEmail,omitempty"`
	Notes         string  `json:"notes,omitempty"`
	CreatedAt     string  `json:"createdAt,omitempty"`
	// Seq is the stream sequence of the event that set Status.
	Seq uint64 `json:"seq"`
}

// List handles GET /orders[?status=]: every order (or those whose current
// status is status), oldest first, as a bare JSON array.
func (o *Orders) List(c *fiber.Ctx) error {
	status, err := parseOrders(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), storeTimeout)
	defer cancel()
	orders, err := o.Store.List(ctx, status)
	if err != nil {
		return (&Handler{Log: o.Log}).storeError(err)
	}
	out := make([]OrderView, len(orders))
	for i, ord := range orders {
		out[i] = OrderView{ID: ord.ID, Status: ord.Status, Amount: ord.Amount, Currency: ord.Currency,
			CustomerEmail: ord.CustomerEmail, Notes: ord.Notes, CreatedAt: ord.CreatedAt, Seq: ord.Seq}
	}
	return c.JSON(out)
}

// parseOrders reads the status filter and names every bad parameter; an
// empty value is no filter.
func parseOrders(c *fiber.Ctx) (string, error) {
	args := queryArgs(c)
	var errs paramErrors
	var unknown []string
	for name := range args {
		if name != "status" && name != "access_token" {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		errs.add(name, "is not a parameter of this endpoint (allowed: status)")
	}
	vals := slices.DeleteFunc(slices.Clone(args["status"]), func(v string) bool { return v == "" })
	status := ""
	switch {
	case len(vals) > 1:
		errs.add("status", "must be given at most once")
	case len(vals) == 1:
		status = vals[0]
		if len(status) > maxStatusLen || !isChannelName(status) {
			errs.add("status", "must be an order status such as created or canceled (lower-case letters, digits, '-' or '_', at most %d)", maxStatusLen)
		}
	}
	if err := errs.err(); err != nil {
		return "", err
	}
	return status, nil
}
