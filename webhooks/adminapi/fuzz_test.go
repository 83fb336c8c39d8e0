package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/schemas/problem"
	"github.com/kilnhq/kiln/webhooks/delivery"
	"github.com/kilnhq/kiln/webhooks/endpoint"
)

// paramsApp serves the admin API's parsing alone: POST /decode runs
// decode and the endpoint check, GET /query runs query; each answers
// what it parsed, or the problem.
func paramsApp(tb testing.TB) *fiber.App {
	tb.Helper()
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: 64 << 10, Log: slog.New(slog.DiscardHandler)})
	app.Post("/decode", func(c *fiber.Ctx) error {
		in, err := decode(c)
		if err != nil {
			return err
		}
		if p := in.Check(true); p != nil {
			return p
		}
		return c.JSON(in)
	})
	app.Get("/query", func(c *fiber.Ctx) error {
		q, err := query(c)
		if err != nil {
			return err
		}
		return c.JSON(q)
	})
	return app
}

// serve runs req through app: the status and the body.
func serve(t *testing.T, app *fiber.App, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatalf("app.Test: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return resp.StatusCode, b
}

// checkProblem fails unless answer is a 4xx problem whose fields are
// short, valid UTF-8 and, when known is set, one of known.
func checkProblem(t *testing.T, status int, answer []byte, known map[string]bool) problem.Details {
	t.Helper()
	var p problem.Details
	if status < 400 || status >= 500 || json.Unmarshal(answer, &p) != nil || p.Status != status {
		t.Fatalf("status %d: %.300s", status, answer)
	}
	for _, e := range p.Errors {
		if len(e.Field) > 128 || !utf8.ValidString(e.Field) || (known != nil && !known[e.Field]) {
			t.Fatalf("problem names field %.80q (%d bytes)", e.Field, len(e.Field))
		}
	}
	return p
}

// FuzzDecodeEndpoint: any body POSTed as an endpoint is either one JSON
// object of known members that passes the endpoint check, or a 4xx
// problem whose fields are short (a member name is not echoed at any
// length); never a 5xx.
func FuzzDecodeEndpoint(f *testing.F) {
	for _, b := range []string{
		`{"url":"https://a.example/hook"}`,
		`{"url":"https://a.example/hook","filters":["order.*","x.>"],"description":"d","disabled":false}`,
		`{"url":"https://a.example/hook"} {"url":"http://b.example"}`,
		`{"url":"https://a.example/hook"}]`,
		`{"url":1}`, `{"filters":"x"}`, `{"filters":[1]}`, `{"url":"https://a.example","nope":1}`,
		`{"url":"https://u:p@a.example"}`, `{"url":"ftp://a.example"}`, `{"url":"https://[::1"}`,
		`{"url":"https://a.example","filters":["a..b"]}`, `{"url":"https://a.example","` + string(bytes.Repeat([]byte("k"), 4096)) + `":1}`,
		"{\"url\":\"https://a.example\",\"\xff\":1}", `{"url":"https://a.example","a\"b":1}`,
		`null`, `[]`, ``, `{`, `{"url":"https://a.example/hook"}` + "\n",
	} {
		f.Add([]byte(b))
	}
	app := paramsApp(f)
	known := map[string]bool{"url": true, "filters": true, "description": true, "disabled": true, "": true}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/decode", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		status, answer := serve(t, app, req)
		if status != http.StatusOK {
			checkProblem(t, status, answer, nil)
			return
		}
		// Accepted: exactly one object of known members.
		d := json.NewDecoder(bytes.NewReader(body))
		var members map[string]json.RawMessage
		if err := d.Decode(&members); err != nil || members == nil {
			t.Fatalf("accepted %.200q: not one object (%v)", body, err)
		}
		if _, err := d.Token(); !errors.Is(err, io.EOF) {
			t.Fatalf("accepted %.200q: something follows the object", body)
		}
		for k := range members {
			if !known[k] {
				t.Fatalf("accepted %.200q with member %.80q", body, k)
			}
		}
		var in endpoint.Input
		if err := json.Unmarshal(answer, &in); err != nil || in.URL == nil {
			t.Fatalf("answer %s", answer)
		}
	})
}

// FuzzDeliveryQuery: any query string is either read into a query within
// its bounds (limit 1 to 1000, since not before 1970, a known status) or
// answered 400 naming status, since or limit.
func FuzzDeliveryQuery(f *testing.F) {
	for _, q := range []string{"", "status=dead", "status=x", "limit=0", "limit=1000", "limit=1001", "limit=-1",
		"limit=99999999999999999999", "since=2026-12-01T00:00:00Z", "since=0000-01-01T00:00:00Z", "since=1764619200000",
		"since=-5", "since=1e3", "since=2026-12-01T00:00:00.123456789+14:00", "status=dead&status=x", "limit=%00", "since=9999-12-31T23:59:59Z"} {
		f.Add(q)
	}
	app := paramsApp(f)
	fields := map[string]bool{"status": true, "since": true, "limit": true}
	f.Fuzz(func(t *testing.T, raw string) {
		vals, err := url.ParseQuery(raw)
		if err != nil || !utf8.ValidString(raw) {
			return
		}
		req := httptest.NewRequest(http.MethodGet, "/query", nil)
		req.URL.RawQuery = vals.Encode()      // as a client sends the values
		req.RequestURI = req.URL.RequestURI() // what app.Test sends
		status, answer := serve(t, app, req)
		if status != http.StatusOK {
			if p := checkProblem(t, status, answer, fields); status != http.StatusBadRequest || len(p.Errors) != 1 {
				t.Fatalf("query %q: %d %s", raw, status, answer)
			}
			return
		}
		var q delivery.Query
		if err := json.Unmarshal(answer, &q); err != nil {
			t.Fatalf("answer %s", answer)
		}
		switch {
		case q.Limit < 1 || q.Limit > 1000:
			t.Fatalf("query %q: limit %d", raw, q.Limit)
		case q.Since < 0:
			t.Fatalf("query %q: since %d, before 1970", raw, q.Since)
		case q.Status != "" && q.Status != delivery.StatusSucceeded && q.Status != delivery.StatusRetrying && q.Status != delivery.StatusDead:
			t.Fatalf("query %q: status %q", raw, q.Status)
		}
	})
}

// TestParamsRefuseWhatTheFuzzersFound: an endpoint body followed by more
// JSON (the first object won), an unknown member named at length (echoed
// whole) and a since before 1970 (a redrive of every endpoint "since" a
// negative time passed its required-since check) are refused.
func TestParamsRefuseWhatTheFuzzersFound(t *testing.T) {
	app := paramsApp(t)
	long := string(bytes.Repeat([]byte("k"), 4096))
	for _, tc := range []struct {
		body, field string
	}{
		{`{"url":"https://a.example/hook"} {"url":"http://b.example/"}`, ""},
		{`{"url":"https://a.example/hook"}]`, ""},
		{`{"url":"https://a.example/hook","` + long + `":1}`, "body"},
		{`{"url":"https://a.example/hook","nope":1}`, "nope"},
	} {
		req := httptest.NewRequest(http.MethodPost, "/decode", bytes.NewReader([]byte(tc.body)))
		status, answer := serve(t, app, req)
		p := checkProblem(t, status, answer, nil)
		require.Equal(t, http.StatusBadRequest, status, "%.80s", tc.body)
		require.Less(t, len(answer), 1024, "%.80s", tc.body)
		if tc.field != "" {
			require.Equal(t, tc.field, p.Errors[0].Field)
		}
	}
	for _, since := range []string{"0000-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z", "1970-01-01T00:00:00Z"} {
		req := httptest.NewRequest(http.MethodGet, "/query?since="+since, nil)
		status, answer := serve(t, app, req)
		p := checkProblem(t, status, answer, nil)
		require.Equal(t, "since", p.Errors[0].Field, since)
	}
}
