package eventpost

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestParseBatchCounts(t *testing.T) {
	t.Parallel()
	body := `{"accepted":97,"duplicates":1,"rejected":2,"failed":0,"results":[{"index":0,"accepted":5,"failed":9}]}`
	got, err := ParseBatchCounts([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if want := (BatchCounts{Accepted: 97, Duplicates: 1, Rejected: 2}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{``, `{"accepted":true}`, `{"accepted":1,"duplicates":0,"rejected":0}`, `not json`} {
		if _, err := ParseBatchCounts([]byte(bad)); err == nil {
			t.Errorf("ParseBatchCounts(%q) succeeded", bad)
		}
	}
}

// kiln fakes POST /events: it answers with the status and body for the
// request's body.
func kiln(t *testing.T, answers map[string]struct {
	status int
	body   string
}) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/base/events" ||
			r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") != "Bearer k" {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		a := answers[string(b)]
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/base"
}

func TestClientAnswers(t *testing.T) {
	t.Parallel()
	url := kiln(t, map[string]struct {
		status int
		body   string
	}{
		"ok":      {202, `{"accepted":true,"id":"x","seq":1,"duplicate":false}`},
		"busy":    {503, `{"title":"Service Unavailable"}`},
		"full":    {202, `{"accepted":2,"duplicates":1,"rejected":0,"failed":0,"results":[]}`},
		"partial": {202, `{"accepted":1,"duplicates":0,"rejected":1,"failed":1,"results":[]}`},
	})
	c, err := New(Options{BaseURL: url + "/", MaxConns: 2, Timeout: 5 * time.Second, APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PostSingle([]byte("ok")); err != nil {
		t.Errorf("single: %v", err)
	}
	var se *StatusError
	if err := c.PostSingle([]byte("busy")); !errors.As(err, &se) || se.Status != 503 {
		t.Errorf("busy: %v", err)
	}
	if n, err := c.PostBatch([]byte("full"), 3); n != 3 || err != nil {
		t.Errorf("full batch: %d, %v", n, err)
	}
	if n, err := c.PostBatch([]byte("partial"), 3); n != 1 || !errors.Is(err, ErrPartial) {
		t.Errorf("partial batch: %d, %v", n, err)
	}
}

func TestClientTransportError(t *testing.T) {
	t.Parallel()
	c, err := New(Options{BaseURL: "http://127.0.0.1:1", MaxConns: 1, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PostSingle([]byte("{}")); err == nil {
		t.Error("post to a closed port succeeded")
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"127.0.0.1:8080", "ftp://x", "http://", "://"} {
		if _, err := New(Options{BaseURL: u, MaxConns: 1, Timeout: time.Second}); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
}
