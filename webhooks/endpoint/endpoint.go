// Package endpoint holds the outbound webhook endpoints: where events are
// delivered, which event types, and the secrets they are signed with,
// stored in MongoDB (collection webhook_endpoints, looked up by _id).
package endpoint

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/problem"
	"github.com/kilnhq/kiln/webhooks/signature"
)

// Endpoint is one receiver of outbound webhooks.
type Endpoint struct {
	ID          string   `bson:"_id" json:"id"`
	URL         string   `bson:"url" json:"url"`
	Filters     []string `bson:"filters" json:"filters"`
	Description string   `bson:"description" json:"description"`
	Disabled    bool     `bson:"disabled" json:"disabled"`
	// DisabledReason says why Kiln disabled it (410, failing too long).
	DisabledReason string `bson:"disabledReason,omitempty" json:"disabledReason,omitempty"`
	// FailingSince is when its current run of failed attempts began (Unix
	// ms); 0 while deliveries succeed.
	FailingSince int64    `bson:"failingSince" json:"failingSince,omitempty"`
	Secrets      []Secret `bson:"secrets" json:"-"`
	CreatedAt    int64    `bson:"createdAt" json:"createdAt"`
	UpdatedAt    int64    `bson:"updatedAt" json:"updatedAt"`
}

// Secret is a signing secret; the current one has no expiry, a rotated-out
// one signs until ExpiresAt (Unix ms).
type Secret struct {
	Value     string `bson:"value"`
	ExpiresAt int64  `bson:"expiresAt,omitempty"`
}

// SigningSecrets are the secrets to sign with at now: the current one and
// every previous one still inside its overlap.
func (e *Endpoint) SigningSecrets(now time.Time) []signature.Secret {
	out := make([]signature.Secret, 0, len(e.Secrets))
	for _, s := range e.Secrets {
		if s.ExpiresAt != 0 && s.ExpiresAt <= now.UnixMilli() {
			continue
		}
		if k, err := signature.ParseSecret(s.Value); err == nil {
			out = append(out, k)
		}
	}
	return out
}

// PreviousSecretExpiresAt is when the newest rotated-out secret stops
// signing (Unix ms), 0 if none is still valid at now.
func (e *Endpoint) PreviousSecretExpiresAt(now time.Time) int64 {
	var latest int64
	for _, s := range e.Secrets {
		if s.ExpiresAt > now.UnixMilli() && s.ExpiresAt > latest {
			latest = s.ExpiresAt
		}
	}
	return latest
}

// Wants reports whether the endpoint takes events of type typ: no filter
// takes every type; filters use the stream's wildcards ('*' one token, a
// trailing '>' one or more).
func (e *Endpoint) Wants(typ string) bool {
	if len(e.Filters) == 0 {
		return true
	}
	for _, f := range e.Filters {
		if schemas.MatchType(f, typ) {
			return true
		}
	}
	return false
}

// maxFilters bounds an endpoint's event-type filters.
const maxFilters = 100

var filterPattern = regexp.MustCompile(`^(\*|[A-Za-z0-9_-]+)(\.(\*|[A-Za-z0-9_-]+))*(\.>)?$|^>$`)

// Input is what a client sends to create or change an endpoint; nil
// members of a change are left as they are.
type Input struct {
	URL         *string   `json:"url"`
	Filters     *[]string `json:"filters"`
	Description *string   `json:"description"`
	Disabled    *bool     `json:"disabled"`
}

// Check returns a 400 naming each bad field; create requires url.
func (in *Input) Check(create bool) *problem.Details {
	var errs []problem.FieldError
	if in.URL == nil && create {
		errs = append(errs, problem.FieldError{Field: "url", Message: "is required"})
	}
	if in.URL != nil {
		if msg := checkURL(*in.URL); msg != "" {
			errs = append(errs, problem.FieldError{Field: "url", Message: msg})
		}
	}
	if in.Filters != nil {
		if len(*in.Filters) > maxFilters {
			// Said once, without an error per entry: a body of 250,000 bad
			// entries was answered with 37 MB of errors.
			errs = append(errs, problem.FieldError{Field: "filters", Message: fmt.Sprintf("must have at most %d entries", maxFilters)})
		}
		for i, f := range (*in.Filters)[:min(len(*in.Filters), maxFilters)] {
			if len(f) > 128 || !filterPattern.MatchString(f) {
				errs = append(errs, problem.FieldError{Field: fmt.Sprintf("filters[%d]", i),
					Message: "must be an event type pattern: dot-separated tokens of [A-Za-z0-9_-] or '*', optionally ending in '.>'"})
			}
		}
	}
	if in.Description != nil && len(*in.Description) > 1024 {
		errs = append(errs, problem.FieldError{Field: "description", Message: "must be at most 1024 bytes"})
	}
	if errs == nil {
		return nil
	}
	p := problem.New(400, "invalid-endpoint", "Invalid webhook endpoint", "the endpoint is not valid")
	p.Errors = errs
	return p
}

func checkURL(s string) string {
	if len(s) > 2048 {
		return "must be at most 2048 characters"
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "must be an absolute http or https URL"
	}
	if u.User != nil {
		return "must not carry credentials"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "must have a port between 1 and 65535"
		}
	}
	return ""
}
