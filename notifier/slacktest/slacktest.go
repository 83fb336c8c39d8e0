// Package slacktest stands in for a Slack incoming webhook in tests: a real
// HTTP server on 127.0.0.1 whose answers a test scripts (500 three times,
// then 200; 429 with Retry-After; always failing) and which keeps every
// payload it received.
package slacktest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Payload is a webhook body as Slack would read it.
type Payload struct {
	Text   string            `json:"text"`
	Blocks []json.RawMessage `json:"blocks"`
}

// Request is one received request and what the server answered.
type Request struct {
	Payload Payload
	Status  int
	At      time.Time // when it arrived
}

// Answer is one scripted response.
type Answer struct {
	Status     int
	RetryAfter time.Duration // sets Retry-After (whole seconds) when > 0
}

// Server is the stand-in webhook.
type Server struct {
	URL string

	mu       sync.Mutex
	script   []Answer // answered first, in order
	fallback int      // then this status
	reqs     []Request
}

// Start starts a webhook that answers 200 until scripted otherwise.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{fallback: http.StatusOK}
	hs := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(hs.Close)
	s.URL = hs.URL + "/services/T000/B000/secret-token"
	return s
}

// Script queues answers to give before the fallback status.
func (s *Server) Script(answers ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, answers...)
}

// Fail answers status to every unscripted request (200 restores it).
func (s *Server) Fail(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fallback = status
}

// Requests returns every request received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Delivered returns the payloads answered with 2xx: what reached Slack.
func (s *Server) Delivered() []Payload {
	var out []Payload
	for _, r := range s.Requests() {
		if r.Status >= 200 && r.Status < 300 {
			out = append(out, r.Payload)
		}
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var p Payload
	if r.Method != http.MethodPost || r.URL.Path != "/services/T000/B000/secret-token" ||
		r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &p) != nil || p.Text == "" {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	a := Answer{Status: s.fallback}
	if len(s.script) > 0 {
		a, s.script = s.script[0], s.script[1:]
	}
	s.reqs = append(s.reqs, Request{Payload: p, Status: a.Status, At: time.Now()})
	s.mu.Unlock()
	if a.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(a.RetryAfter/time.Second)))
	}
	w.WriteHeader(a.Status)
	if a.Status == http.StatusOK {
		_, _ = io.WriteString(w, "ok")
	}
}
