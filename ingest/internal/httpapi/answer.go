package httpapi

import (
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/schemas/problem"
)

// answerSingle replies to a single-object body: 202 with the compat shape,
// or the item's problem.
func (h *Handler) answerSingle(c *fiber.Ctx, r ItemResult) error {
	if r.Error != nil {
		if r.Error.Status == http.StatusServiceUnavailable {
			// Tell the client which id to retry with so the retry is idempotent.
			r.Error.Detail += " (id " + r.ID + ")"
		}
		return r.Error
	}
	return c.Status(http.StatusAccepted).JSON(SingleResponse{Accepted: true, ID: r.ID, Seq: r.Seq, Duplicate: r.Duplicate})
}

// answerBatch replies to a batch. Any stored item makes it a 202 with one
// result per item; when nothing was stored the answer is the problem that
// explains why (400 every item invalid, 503 the store failed), still with
// the per-item results.
func (h *Handler) answerBatch(c *fiber.Ctx, results []ItemResult) error {
	resp := BatchResponse{Results: results}
	var fieldErrs []problem.FieldError
	for _, r := range results {
		switch {
		case r.Error == nil && r.Duplicate:
			resp.Duplicates++
		case r.Error == nil:
			resp.Accepted++
		case r.Error.Status == http.StatusServiceUnavailable:
			resp.Failed++
		default:
			resp.Rejected++
			fieldErrs = append(fieldErrs, r.Error.Errors...)
		}
	}
	if resp.Failed > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(h.RetryAfter))
	}
	if resp.Accepted+resp.Duplicates > 0 {
		return c.Status(http.StatusAccepted).JSON(resp)
	}
	var p *problem.Details
	if resp.Failed > 0 {
		p = problem.Unavailable(strconv.Itoa(resp.Failed)+" events were not confirmed by JetStream; retry them with the same ids", h.RetryAfter)
	} else {
		p = problem.Invalid("none of the "+strconv.Itoa(len(results))+" events is valid", fieldErrs)
	}
	return writeBatchProblem(c, p, resp)
}

// batchProblem is a problem document that also carries the per-item results.
type batchProblem struct {
	*problem.Details
	BatchResponse
}

func writeBatchProblem(c *fiber.Ctx, p *problem.Details, resp BatchResponse) error {
	if p.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(p.RetryAfter))
	}
	p.Instance = c.Path()
	c.Status(p.Status)
	return c.JSON(batchProblem{Details: p, BatchResponse: resp}, problem.ContentType)
}
