// Package redact hides the credentials of connection URLs (MONGO_URI,
// REDIS_URL, NATS_URL, …) in what Kiln logs and in the errors it returns:
// every place that may print such a URL passes it, or an error that may
// quote it, through here first.
package redact

import (
	"net/url"
	"strings"
)

// mask replaces a password.
const mask = "xxxxx"

// URL returns s with the password of its userinfo replaced by "xxxxx"
// (url.URL.Redacted). A string that does not parse as a URL is scrubbed
// by hand: everything between "://" and the last "@" before the path
// keeps only its user name.
func URL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword {
		return s
	}
	return scheme + "://" + user + ":" + mask + rest[at:]
}

// Error returns err with the passwords of urls masked in its message,
// however the URL was quoted (as written or percent-decoded); errors.Is
// and errors.As still see the original. nil stays nil.
func Error(err error, urls ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	masked := msg
	for _, s := range urls {
		for _, secret := range passwords(s) {
			masked = strings.ReplaceAll(masked, secret, mask)
		}
	}
	if masked == msg {
		return err
	}
	return &redacted{msg: masked, err: err}
}

// passwords are the forms a URL's password may be printed in.
func passwords(s string) []string {
	var out []string
	add := func(p string) {
		if p != "" && p != mask {
			out = append(out, p)
		}
	}
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
			add(url.QueryEscape(p))
			add(url.PathEscape(p))
		}
	}
	// As written, even when s does not parse.
	if _, rest, ok := strings.Cut(s, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, p, ok := strings.Cut(rest[:at], ":"); ok {
				add(p)
				if d, err := url.PathUnescape(p); err == nil {
					add(d)
				}
			}
		}
	}
	return out
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
