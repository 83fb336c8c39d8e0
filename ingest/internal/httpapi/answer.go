package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/ingest/internal/eventbody"

	"github.com/kilnhq/kiln/schemas/problem"
)

// answerSingle replies to a single-object body: 202 with the compat shape,
// or the item's problem.
func (h *Handler) answerSingle(c *fiber.Ctx, r ItemResult) error {
	if r.Error != nil {
		if r.Error.Status == http.StatusServiceUnavailable {
			// Tell the client which id to retry with so the retry is
			// idempotent. A server-assigned id named here is settled like a
			// client id (publish.Publisher.inDoubt): if the write was in doubt,
			// the resolver records it in the id ledger, so a retry with it is
			// a duplicate after the dedupe window too.
			r.Error.Detail += " (id " + r.ID + ")"
		}
		return r.Error
	}
	c.Status(http.StatusAccepted).Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	return c.Send(appendSingle(make([]byte, 0, 64+len(r.ID)), &SingleResponse{Accepted: true, ID: r.ID, Seq: r.Seq, Duplicate: r.Duplicate, Quarantined: r.Quarantined}))
}

// answerBatch replies to a batch. Any stored item makes it a 202 with one
// result per item; when nothing was stored the answer is the problem that
// explains why (400 every item invalid, 503 the store failed), still with
// the per-item results.
func (h *Handler) answerBatch(c *fiber.Ctx, results []ItemResult) error {
	resp := BatchResponse{Results: results}
	var fieldErrs []problem.FieldError
	forbidden := 0
	for _, r := range results {
		switch {
		case r.Error == nil && r.Quarantined:
			resp.Quarantined++
		case r.Error == nil && r.Duplicate:
			resp.Duplicates++
		case r.Error == nil:
			resp.Accepted++
		case r.Error.Status == http.StatusServiceUnavailable:
			resp.Failed++
		default:
			resp.Rejected++
			if r.Error.Status == http.StatusForbidden {
				forbidden++
			}
			fieldErrs = append(fieldErrs, r.Error.Errors...)
		}
	}
	if resp.Failed > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(h.RetryAfter))
	}
	if resp.Accepted+resp.Duplicates+resp.Quarantined > 0 {
		c.Status(http.StatusAccepted).Response().Header.SetContentType(fiber.MIMEApplicationJSON)
		body, err := appendBatch(make([]byte, 0, 96+len(results)*64), &resp)
		if err != nil {
			return err
		}
		return c.Send(body)
	}
	var p *problem.Details
	switch {
	case resp.Failed > 0:
		p = problem.Unavailable(strconv.Itoa(resp.Failed)+" events were not confirmed by JetStream; retry them with the same ids", h.RetryAfter)
	case forbidden == len(results):
		p = problem.New(http.StatusForbidden, "forbidden-event-type", "Event type not allowed",
			"this key may write none of the "+strconv.Itoa(len(results))+" events' types")
		p.Errors = fieldErrs
	default:
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

// appendSingle appends json.Marshal(*r), without reflection.
func appendSingle(dst []byte, r *SingleResponse) []byte {
	dst = append(dst, `{"accepted":`...)
	dst = strconv.AppendBool(dst, r.Accepted)
	dst = append(dst, `,"id":`...)
	dst = eventbody.AppendString(dst, r.ID)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, `,"duplicate":`...)
	dst = strconv.AppendBool(dst, r.Duplicate)
	if r.Quarantined {
		dst = append(dst, `,"quarantined":true`...)
	}
	return append(dst, '}')
}

// appendBatch appends json.Marshal(*r), without reflection for the
// results that carry no error.
func appendBatch(dst []byte, r *BatchResponse) ([]byte, error) {
	dst = append(dst, `{"accepted":`...)
	dst = strconv.AppendInt(dst, int64(r.Accepted), 10)
	dst = append(dst, `,"duplicates":`...)
	dst = strconv.AppendInt(dst, int64(r.Duplicates), 10)
	dst = append(dst, `,"rejected":`...)
	dst = strconv.AppendInt(dst, int64(r.Rejected), 10)
	dst = append(dst, `,"failed":`...)
	dst = strconv.AppendInt(dst, int64(r.Failed), 10)
	if r.Quarantined > 0 {
		dst = append(dst, `,"quarantined":`...)
		dst = strconv.AppendInt(dst, int64(r.Quarantined), 10)
	}
	dst = append(dst, `,"results":`...)
	if r.Results == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range r.Results {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendItem(dst, &r.Results[i]); err != nil {
				return nil, err
			}
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), nil
}

func appendItem(dst []byte, r *ItemResult) ([]byte, error) {
	if r.Error != nil {
		b, err := json.Marshal(r)
		return append(dst, b...), err
	}
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendInt(dst, int64(r.Index), 10)
	if r.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = eventbody.AppendString(dst, r.ID)
	}
	if r.Seq != 0 {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, r.Seq, 10)
	}
	dst = append(dst, `,"duplicate":`...)
	dst = strconv.AppendBool(dst, r.Duplicate)
	if r.Quarantined {
		dst = append(dst, `,"quarantined":true`...)
	}
	return append(dst, '}'), nil
}
