// Package problem is Kiln's error body: RFC 9457 problem details
// (application/problem+json) with field-level reasons. Every service answers
// client mistakes and outages with it, so clients parse one shape.
package problem

import (
	"fmt"
	"net/http"

	"github.com/kilnhq/kiln/schemas"
)

// ContentType is the media type of a problem body.
const ContentType = "application/problem+json"

// typeBase prefixes the problem type URIs; they are documented in docs/api.md.
const typeBase = "https://kiln.dev/problems/"

// Details is an RFC 9457 problem document with Kiln's extensions.
type Details struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors lists field-level reasons; Index is the batch position of the
	// item the reason belongs to (absent for single events).
	Errors []FieldError `json:"errors,omitempty"`
	// RetryAfter mirrors the Retry-After header, in seconds, when set.
	RetryAfter int `json:"retryAfter,omitempty"`
}

// FieldError is one reason an input was refused.
type FieldError struct {
	Index   *int   `json:"index,omitempty"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error makes a Details usable as an error value that the edge maps to a response.
func (d *Details) Error() string {
	if d.Detail != "" {
		return fmt.Sprintf("%d %s: %s", d.Status, d.Title, d.Detail)
	}
	return fmt.Sprintf("%d %s", d.Status, d.Title)
}

// New returns a problem of the given status with a slug type and title.
func New(status int, slug, title, detail string) *Details {
	return &Details{Type: typeBase + slug, Title: title, Status: status, Detail: detail}
}

// Invalid is the compat 400 for an event that fails its schema.
func Invalid(detail string, errs []FieldError) *Details {
	d := New(http.StatusBadRequest, "invalid-event", "Invalid event format", detail)
	d.Errors = errs
	return d
}

// FromSchema converts schema field errors, tagging them with a batch index
// when index is not nil.
func FromSchema(index *int, errs []schemas.FieldError) []FieldError {
	out := make([]FieldError, len(errs))
	for i, e := range errs {
		out[i] = FieldError{Index: index, Field: e.Field, Message: e.Message}
	}
	return out
}

// Param is the 400 for a bad query or header parameter, naming it.
func Param(name, message string) *Details {
	d := New(http.StatusBadRequest, "invalid-parameter", "Invalid parameter", fmt.Sprintf("%s: %s", name, message))
	d.Errors = []FieldError{{Field: name, Message: message}}
	return d
}

// Unavailable is the 503 for a dependency that is down or too slow.
func Unavailable(detail string, retryAfterSeconds int) *Details {
	d := New(http.StatusServiceUnavailable, "unavailable", "Service unavailable", detail)
	d.RetryAfter = retryAfterSeconds
	return d
}
