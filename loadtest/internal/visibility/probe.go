// Package visibility measures how long an accepted event takes to become
// readable: it posts a probe event with a client id to POST /events and
// polls GET /events/{id}, or the list GET /events?userId=, until the read
// API returns it.
package visibility

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Options configure a Prober.
type Options struct {
	BaseURL string        // Kiln's base URL (ingest and read API on one port)
	APIKey  string        // sent as a bearer token when set
	Poll    time.Duration // first wait between reads of GET /events/{id}
	MaxPoll time.Duration // the wait grows by half each read up to this
	Timeout time.Duration // give up on a probe after this long
	// List polls GET /events?userId=<the probe's own user>&limit=1 (the
	// list, which the recent-events cache answers) instead of the point
	// lookup GET /events/{id} (MongoDB).
	List bool
}

// Prober posts probe events and waits for them to be visible. It is safe
// for concurrent use.
type Prober struct {
	opts  Options
	hc    *http.Client
	nonce string
	n     atomic.Int64
}

// New returns a Prober for opts.BaseURL.
func New(opts Options) *Prober {
	opts.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")
	return &Prober{
		opts:  opts,
		hc:    &http.Client{Timeout: opts.Timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		nonce: strconv.FormatInt(time.Now().UnixNano(), 36),
	}
}

// Close releases idle connections.
func (p *Prober) Close() { p.hc.CloseIdleConnections() }

// probe is the body of a probe event: a page_view with a client id.
type probe struct {
	ID        string         `json:"id"`
	EventType string         `json:"eventType"`
	UserID    string         `json:"userId"`
	Timestamp int64          `json:"timestamp"`
	Metadata  map[string]any `json:"metadata"`
}

// Probe posts one event and returns the time from its 202 Accepted to the
// first GET /events/{id} that answers 200.
func (p *Prober) Probe(ctx context.Context) (time.Duration, error) {
	id := "probe-" + p.nonce + "-" + strconv.FormatInt(p.n.Add(1), 10)
	user := "kiln-load-probe"
	path := "/events/" + id
	if p.opts.List {
		user = id
		path = "/events?limit=1&userId=" + id
	}
	body, err := json.Marshal(probe{ID: id, EventType: "page_view", UserID: user,
		Timestamp: time.Now().UnixMilli(), Metadata: map[string]any{"path": "/probe", "durationMs": 1}})
	if err != nil {
		return 0, fmt.Errorf("encode probe: %w", err)
	}
	status, err := p.do(ctx, http.MethodPost, "/events", body)
	if err != nil {
		return 0, err
	}
	if status != http.StatusAccepted {
		return 0, fmt.Errorf("POST /events: status %d", status)
	}
	accepted := time.Now()
	deadline := accepted.Add(p.opts.Timeout)
	// Polling backs off so that probes of a lagging read model do not
	// load the store they wait for; the reading is late by at most the
	// current wait.
	wait := p.opts.Poll
	for {
		status, found, err := p.read(ctx, path, id)
		switch {
		case err != nil:
			return 0, err
		case found:
			return time.Since(accepted), nil
		case status != http.StatusNotFound && status != http.StatusOK:
			return 0, fmt.Errorf("GET %s: status %d", path, status)
		case time.Now().After(deadline):
			return 0, fmt.Errorf("probe %s not visible after %s", id, p.opts.Timeout)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait+wait/2, max(p.opts.MaxPoll, p.opts.Poll))
	}
}

// read GETs path; found is a 200 whose body holds id.
func (p *Prober) read(ctx context.Context, path, id string) (status int, found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.opts.BaseURL+path, nil)
	if err != nil {
		return 0, false, fmt.Errorf("GET %s: %w", path, err)
	}
	if p.opts.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.opts.APIKey)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, false, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false, fmt.Errorf("GET %s: %w", path, err)
	}
	return resp.StatusCode, resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(`"`+id+`"`)), nil
}

// do sends one request and returns the status, the body read and dropped.
func (p *Prober) do(ctx context.Context, method, path string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.opts.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if p.opts.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.opts.APIKey)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
