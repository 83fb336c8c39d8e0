package httpserver

import (
	"fmt"
	"net/url"
	"strings"
)

// OriginsVar is the setting that lists the origins browsers may call Kiln
// from: CORS on the public routes and the Socket.IO origin check.
const OriginsVar = "KILN_ALLOWED_ORIGINS"

// Origins is Kiln's one browser origin policy, parsed from
// KILN_ALLOWED_ORIGINS: "*" (any origin), exact origins
// ("https://app.example.com") and wildcard subdomains
// ("https://*.example.com", which matches a.example.com and
// a.b.example.com, not example.com itself), comma separated. The zero
// value allows no cross-origin page.
type Origins struct {
	any   bool
	exact []string
	// wild are the wildcard entries, split around their "*".
	wild []wildcard
	raw  string
}

type wildcard struct{ prefix, suffix string }

func (w wildcard) match(origin string) bool {
	if len(origin) <= len(w.prefix)+len(w.suffix) || !strings.HasPrefix(origin, w.prefix) || !strings.HasSuffix(origin, w.suffix) {
		return false
	}
	return !strings.ContainsAny(origin[len(w.prefix):len(origin)-len(w.suffix)], "/:@?#")
}

// ParseOrigins parses a KILN_ALLOWED_ORIGINS list; its error names the
// variable and the entry at fault.
func ParseOrigins(list string) (Origins, error) {
	o := Origins{raw: list}
	for entry := range strings.SplitSeq(list, ",") {
		entry = strings.TrimSpace(entry)
		switch {
		case entry == "":
			continue
		case entry == "*":
			o.any = true
			continue
		}
		norm, err := normalizeOrigin(entry)
		if err != nil {
			return Origins{}, fmt.Errorf("%s: %q %w (want *, scheme://host[:port] or scheme://*.domain[:port])", OriginsVar, entry, err)
		}
		if scheme, host, ok := strings.Cut(norm, "://*."); ok {
			o.wild = append(o.wild, wildcard{prefix: scheme + "://", suffix: "." + host})
			continue
		}
		o.exact = append(o.exact, norm)
	}
	if !o.any && len(o.exact) == 0 && len(o.wild) == 0 {
		return Origins{}, fmt.Errorf("%s must list at least one origin, or * for any", OriginsVar)
	}
	return o, nil
}

// normalizeOrigin checks that s is an origin (a wildcard one may start its
// host with "*.") and returns it lower-cased, without a trailing slash.
func normalizeOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("is not an origin")
	}
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(s, "?") {
		return "", fmt.Errorf("has more than scheme, host and port")
	}
	host := strings.TrimPrefix(u.Host, "*.")
	if strings.Contains(host, "*") || host == "" || strings.HasPrefix(host, ".") || strings.HasPrefix(host, ":") {
		return "", fmt.Errorf("may use * only as the whole first label (https://*.example.com)")
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// UnmarshalText parses the setting (caarlos0/env reads it through this).
func (o *Origins) UnmarshalText(b []byte) error {
	p, err := ParseOrigins(string(b))
	if err != nil {
		return err
	}
	*o = p
	return nil
}

// String is the list as configured.
func (o Origins) String() string { return o.raw }

// Any reports whether every origin is allowed ("*").
func (o Origins) Any() bool { return o.any }

// Allows reports whether a page on origin (the Origin request header) may
// call Kiln.
func (o Origins) Allows(origin string) bool {
	return o.any || o.Listed(origin)
}

// Listed reports whether origin is listed explicitly (exactly or by a
// wildcard subdomain): "*" does not count. Server-to-server routes (the
// webhooks admin API) answer only these.
func (o Origins) Listed(origin string) bool {
	origin = strings.ToLower(origin)
	for _, e := range o.exact {
		if e == origin {
			return true
		}
	}
	for _, w := range o.wild {
		if w.match(origin) {
			return true
		}
	}
	return false
}

// AllowsRequest is Allows for a request to host (its Host header): a page
// Kiln serves itself (same origin) is always allowed.
func (o Origins) AllowsRequest(origin, host string) bool {
	if _, h, ok := strings.Cut(origin, "://"); ok && host != "" && strings.EqualFold(h, host) {
		return true
	}
	return o.Allows(origin)
}
