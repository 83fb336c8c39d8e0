// Package eventpost posts event bodies to Kiln's POST /events over a pooled
// fasthttp client and checks each answer.
package eventpost

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/valyala/fasthttp"
)

// Options configure a Client.
type Options struct {
	// BaseURL is Kiln's base URL, e.g. http://127.0.0.1:8080.
	BaseURL string
	// MaxConns caps the open connections; give it one per concurrent caller.
	MaxConns int
	// Timeout bounds each request (write and read).
	Timeout time.Duration
	// APIKey, when set, is sent as Authorization: Bearer.
	APIKey string
}

// Client posts to one Kiln. It is safe for concurrent use.
type Client struct {
	hc   *fasthttp.HostClient
	uri  string
	auth string
}

// New returns a client for opts.BaseURL.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(opts.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("kiln url %q: %w", opts.BaseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("kiln url %q: scheme must be http or https", opts.BaseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("kiln url %q: no host", opts.BaseURL)
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	c := &Client{
		hc: &fasthttp.HostClient{
			Addr:                     addr,
			IsTLS:                    u.Scheme == "https",
			MaxConns:                 opts.MaxConns,
			MaxConnWaitTimeout:       opts.Timeout,
			ReadTimeout:              opts.Timeout,
			WriteTimeout:             opts.Timeout,
			MaxIdleConnDuration:      time.Minute,
			NoDefaultUserAgentHeader: true,
		},
		uri: u.Scheme + "://" + u.Host + strings.TrimSuffix(u.EscapedPath(), "/") + "/events",
	}
	if opts.APIKey != "" {
		c.auth = "Bearer " + opts.APIKey
	}
	return c, nil
}

// StatusError is an answer other than 202 Accepted.
type StatusError struct {
	Status int
	Body   string // the start of the answer body
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("POST /events: status %d: %s", e.Status, e.Body)
}

// ErrPartial reports a 202 batch answer in which not every event was stored.
var ErrPartial = errors.New("POST /events: batch partly refused")

// PostSingle posts one JSON event and expects 202.
func (c *Client) PostSingle(body []byte) error {
	_, err := c.post(body, nil)
	return err
}

// PostBatch posts a JSON array of n events and returns how many the answer
// says were stored (accepted or duplicate). It reports ErrPartial when that
// is fewer than n.
func (c *Client) PostBatch(body []byte, n int) (int, error) {
	var stored int
	_, err := c.post(body, func(b []byte) error {
		counts, err := ParseBatchCounts(b)
		if err != nil {
			return err
		}
		stored = counts.Accepted + counts.Duplicates
		if stored < n {
			return fmt.Errorf("%w: %d of %d stored (%d rejected, %d failed)", ErrPartial, stored, n, counts.Rejected, counts.Failed)
		}
		return nil
	})
	return stored, err
}

// PostBatchRetrying is PostBatch retried after an error, which client ids
// in body make safe: up to tries times, 100 ms after the first failure and
// doubling up to 1 s between tries, while ctx lasts. retried, when not nil,
// is called before each retry.
func (c *Client) PostBatchRetrying(ctx context.Context, body []byte, n int, tries uint, retried func()) error {
	_, err := backoff.Retry(ctx, func() (int, error) { return c.PostBatch(body, n) },
		backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: time.Second}),
		backoff.WithMaxTries(tries), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(error, time.Duration) {
			if retried != nil {
				retried()
			}
		}))
	return err
}

// post sends body and hands a 202 answer's body to check.
func (c *Client) post(body []byte, check func([]byte) error) (int, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(c.uri)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	if c.auth != "" {
		req.Header.Set(fasthttp.HeaderAuthorization, c.auth)
	}
	req.SetBodyRaw(body)
	if err := c.hc.Do(req, resp); err != nil {
		return 0, fmt.Errorf("POST /events: %w", err)
	}
	status := resp.StatusCode()
	if status != fasthttp.StatusAccepted {
		b := resp.Body()
		return status, &StatusError{Status: status, Body: string(b[:min(len(b), 200)])}
	}
	if check != nil {
		return status, check(resp.Body())
	}
	return status, nil
}
