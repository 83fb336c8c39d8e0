package delivery

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/kilnhq/kiln/webhooks/endpoint"
	"github.com/kilnhq/kiln/webhooks/signature"
)

// excerptBytes is how much of a response body the log keeps.
const excerptBytes = 512

// Sender makes signed HTTP requests through the SSRF guard.
type Sender struct {
	client  *http.Client
	timeout time.Duration
}

// NewSender returns a sender whose attempts each last at most timeout.
// maxConnsPerHost bounds the connections to one host (several endpoints
// may share one; the worker bounds the requests per endpoint).
func NewSender(guard Guard, timeout time.Duration, maxConnsPerHost int) *Sender {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: guard.Control}
	transport := &http.Transport{
		Proxy:                 nil, // the guard must see the real destination
		DialContext:           dialer.DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   maxConnsPerHost,
		MaxConnsPerHost:       maxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2:     true,
	}
	return &Sender{timeout: timeout, client: &http.Client{
		Transport: transport,
		// A redirect is the endpoint's answer, not a new destination.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Attempt is the outcome of one request.
type Attempt struct {
	At        int64  `bson:"at" json:"at"` // Unix ms
	Status    int    `bson:"status" json:"status"`
	LatencyMs int64  `bson:"latencyMs" json:"latencyMs"`
	Error     string `bson:"error,omitempty" json:"error,omitempty"`
	Response  string `bson:"response,omitempty" json:"response,omitempty"`
	// retryAfter is the receiver's Retry-After on 429/503.
	retryAfter time.Duration
}

// OK reports a 2xx answer.
func (a *Attempt) OK() bool { return a.Status >= 200 && a.Status < 300 }

// Send posts body to ep with Standard Webhooks headers.
func (s *Sender) Send(ctx context.Context, ep *endpoint.Endpoint, webhookID string, body []byte) Attempt {
	now := time.Now()
	a := Attempt{At: now.UnixMilli()}
	secrets := ep.SigningSecrets(now)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		a.Error = "bad endpoint URL: " + err.Error()
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Kiln-Webhooks/1")
	req.Header.Set("webhook-id", webhookID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", signature.Sign(secrets, webhookID, now, body))
	resp, err := s.client.Do(req)
	a.LatencyMs = time.Since(now).Milliseconds()
	if err != nil {
		var refused *RefusedError
		switch {
		case errors.As(err, &refused):
			a.Error = refused.Error()
		case errors.Is(err, context.DeadlineExceeded):
			a.Error = "no answer within " + s.timeout.String()
		default:
			a.Error = err.Error()
		}
		return a
	}
	defer resp.Body.Close()
	a.Status = resp.StatusCode
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, excerptBytes))
	a.Response = string(bytes.ToValidUTF8(excerpt, nil))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		a.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	}
	if !a.OK() && a.Error == "" {
		a.Error = "HTTP " + strconv.Itoa(resp.StatusCode)
	}
	return a
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		// The worker caps it (WEBHOOKS_MAX_RETRY_AFTER); here it must only
		// not overflow.
		return time.Duration(min(n, int64(math.MaxInt64/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
