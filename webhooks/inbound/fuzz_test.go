package inbound

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/webhooks/signature"
)

const (
	fuzzLegacySecret = "s3cret-value"
	fuzzStdSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	fuzzPayload      = `{"type":"order.created","data":{"id":"o-1","amount":42.5,"customerEmail":"ann@example.com"}}`
)

// fuzzNow is the handler's clock in the fuzz target.
var fuzzNow = time.UnixMilli(1764619200000)

// recorder is an Appender that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	events [][]byte
}

func (r *recorder) AppendEvent(_ context.Context, _ string, event []byte) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, bytes.Clone(event))
	return false, nil
}

func (r *recorder) take() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// fuzzApp serves POST /webhooks/:provider with a legacy provider ("demo",
// through WEBHOOK_SECRET) and a Standard Webhooks one ("shop", prefix
// "shop.") at fuzzNow, behind Kiln's app (body limit 64 KiB).
func fuzzApp(tb testing.TB) (*fiber.App, *recorder, signature.Secret) {
	tb.Helper()
	sec, err := signature.ParseSecret(fuzzStdSecret)
	if err != nil {
		tb.Fatal(err)
	}
	shop := &Provider{Name: "shop", Secrets: []signature.Secret{sec}, Mapping: Mapping{EventTypePrefix: "shop."}}
	shop.Mapping.setDefaults()
	rec := &recorder{}
	log := slog.New(slog.DiscardHandler)
	h := &Handler{providers: map[string]*Provider{"shop": shop}, legacy: fuzzLegacySecret, tolerance: 5 * time.Minute,
		appender: rec, now: func() time.Time { return fuzzNow }, log: log}
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: 64 << 10, Log: log})
	h.Register(app)
	return app, rec, sec
}

// FuzzHandler sends POST /webhooks/{provider} with fuzzed headers and
// body (signed with the true MAC when signed is set, so the mapping is
// reached too). Whatever comes in: no 5xx; 202 only for a message whose
// signature verifies within the tolerance, with exactly one event appended,
// a JSON object whose id is the webhook's and whose type is the mapped
// one; every other answer is problem+json and appends nothing; and an
// old-scheme webhook accepted again with its signature upper-cased is the
// same event.
func FuzzHandler(f *testing.F) {
	ms := strconv.FormatInt(fuzzNow.UnixMilli(), 10)
	sec := strconv.FormatInt(fuzzNow.Unix(), 10)
	f.Add("demo", "", ms, "", "", []byte(fuzzPayload), true)
	f.Add("demo", strings.Repeat("0", 64), ms, "", "", []byte(fuzzPayload), false)
	f.Add("demo", "", "9223372036854775807", "", "", []byte(fuzzPayload), true)
	f.Add("demo", "", ms, "", "", []byte(`{"type":"a b","data":{}}`), true)
	f.Add("demo", "", ms, "", "", []byte(`{"type":"x","data":[1]}`), true)
	f.Add("demo", "", ms, "", "", []byte(`[{"type":"x"}]`), true)
	f.Add("demo", "", ms, "", "", []byte("{\"type\":\"x\xff\"}"), true)
	f.Add("demo", "", ms, "", "", []byte(`{"type":"x","type":"y"}`), true)
	f.Add("demo", "", ms, "", "", []byte(`{"type":"x","data":{"customerEmail":{"a":1}}}`), true)
	f.Add("shop", "", sec, "msg_1", "", []byte(fuzzPayload), true)
	f.Add("shop", "", sec, "msg_1", "v1,AAAA v1,", []byte(fuzzPayload), false)
	f.Add("shop", "", sec, "", "", []byte(fuzzPayload), true)
	f.Add("shop", "", "20000000000", "msg_2", "", []byte(fuzzPayload), true)
	f.Add("nope", "", ms, "", "", []byte(fuzzPayload), true)
	f.Add("a%2Fb", "", ms, "", "", []byte(`{}`), true)
	f.Fuzz(func(t *testing.T, provider, xsig, xts, whID, whSig string, body []byte, signed bool) {
		app, rec, key := fuzzApp(t)
		legacy := whID == "" && whSig == ""
		if signed {
			if legacy {
				xsig = signature.LegacySign(fuzzLegacySecret, provider, xts, body)
			} else {
				whSig = strings.TrimSpace(whSig + " v1," + macOf(key, whID, xts, body))
			}
		}
		req := httptest.NewRequest(http.MethodPost, "/webhooks/x", bytes.NewReader(body))
		req.URL.RawPath, req.URL.Path = "", "/webhooks/"+provider
		req.RequestURI = req.URL.RequestURI() // what app.Test sends
		req.Header.Set("Content-Type", "application/json")
		for k, v := range map[string]string{"X-Signature": xsig, "X-Timestamp": xts, "webhook-id": whID,
			"webhook-timestamp": xts, "webhook-signature": whSig} {
			if v != "" && validHeader(v) {
				req.Header.Set(k, v)
			}
		}
		status, answer := call(t, app, req)
		events := rec.take()
		if status >= 500 {
			t.Fatalf("status %d: %s", status, answer)
		}
		if status != http.StatusAccepted {
			if len(events) != 0 {
				t.Fatalf("status %d appended %d events", status, len(events))
			}
			if !json.Valid(answer) || !gjson.GetBytes(answer, "status").Exists() {
				t.Fatalf("status %d is not a problem: %s", status, answer)
			}
			return
		}
		if len(events) != 1 || !json.Valid(events[0]) || !gjson.ParseBytes(events[0]).IsObject() {
			t.Fatalf("202 appended %q", events)
		}
		ev := gjson.ParseBytes(events[0])
		ts := fuzzNow
		var err error
		if req.Header.Get("webhook-signature") != "" {
			_, err = signature.Verify([]signature.Secret{key}, signature.Headers{ID: req.Header.Get("webhook-id"),
				Timestamp: req.Header.Get("webhook-timestamp"), Signature: req.Header.Get("webhook-signature")}, body, ts, 5*time.Minute)
		} else {
			_, err = signature.LegacyVerify([]string{fuzzLegacySecret}, provider, req.Header.Get("X-Signature"),
				req.Header.Get("X-Timestamp"), body, ts, 5*time.Minute)
		}
		if err != nil {
			t.Fatalf("202 for a message that does not verify (%v)", err)
		}
		if !strings.HasPrefix(ev.Get("id").Str, "wh_"+provider+"_") {
			t.Fatalf("event id %q is not the webhook's", ev.Get("id").Str)
		}
		typ := gjson.GetBytes(body, "type").Str
		if provider == "shop" {
			typ = "shop." + typ
		}
		if ev.Get("eventType").Str != typ {
			t.Fatalf("eventType %q, want %q", ev.Get("eventType").Str, typ)
		}
		if req.Header.Get("webhook-signature") == "" {
			req := httptest.NewRequest(http.MethodPost, "/webhooks/x", bytes.NewReader(body))
			req.URL.RawPath, req.URL.Path = "", "/webhooks/"+provider
			req.RequestURI = req.URL.RequestURI()
			req.Header.Set("X-Timestamp", xts)
			req.Header.Set("X-Signature", strings.ToUpper(xsig))
			if status, answer := call(t, app, req); status != http.StatusAccepted {
				t.Fatalf("upper-cased signature: %d %s", status, answer)
			}
			if again := rec.take(); len(again) != 1 || gjson.GetBytes(again[0], "id").Str != ev.Get("id").Str {
				t.Fatalf("upper-cased signature is another event: %q, first %q", again, events[0])
			}
		}
	})
}

// call serves req and returns the status and body.
func call(t *testing.T, app *fiber.App, req *http.Request) (int, []byte) {
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

// validHeader reports whether v can be sent as a header value.
func validHeader(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			return false
		}
	}
	return strings.TrimSpace(v) == v
}

// macOf is the base64 MAC of a Standard Webhooks message over the
// timestamp header as sent.
func macOf(s signature.Secret, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, s)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// FuzzMap: any verified payload maps to a valid JSON event object with the
// webhook's id and the prefixed type, or to a 400 naming the field; never
// a panic.
func FuzzMap(f *testing.F) {
	for _, b := range []string{fuzzPayload, `{"type":"x"}`, `{"type":""}`, `{"type":1}`, `{"type":"x","data":null}`,
		`{"type":"x","data":{"customerEmail":""}}`, `{"type":"x\u0000y","data":{}}`, "{\"type\":\"\xff\"}", `[]`, `"x"`, ``,
		`{"type":"x","data":{"a":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}}`} {
		f.Add([]byte(b), "wh_demo_1", "", "")
	}
	f.Add([]byte(`{"kind":"x","payload":{"u":"a"}}`), "id", "kind", "payload")
	f.Add([]byte(`{"a":{"b":"t"}}`), "id", "a.b", "a")
	f.Fuzz(func(t *testing.T, body []byte, id, typePath, metaPath string) {
		if !utf8.ValidString(id) {
			return // ids are eventID's: ASCII
		}
		p := &Provider{Name: "demo", Mapping: Mapping{EventType: typePath, Metadata: metaPath, EventTypePrefix: "p."}}
		p.Mapping.setDefaults()
		out, perr := Map(p, id, fuzzNow, body)
		if perr != nil {
			if perr.Status != http.StatusBadRequest {
				t.Fatalf("status %d", perr.Status)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("not JSON: %q", out)
		}
		ev := gjson.ParseBytes(out)
		if !ev.IsObject() || ev.Get("id").Str != id || !strings.HasPrefix(ev.Get("eventType").Str, "p.") ||
			ev.Get("timestamp").Int() != fuzzNow.UnixMilli() {
			t.Fatalf("mapped %s from %q", out, body)
		}
		if m := ev.Get("metadata"); m.Exists() && !m.IsObject() {
			t.Fatalf("metadata is not an object: %s", out)
		}
	})
}

// TestMapRefusesInvalidUTF8: a verified payload with invalid UTF-8 in a
// string is a 400, not an event whose type or user id has U+FFFD in place
// of the bytes sent (FuzzHandler found it).
func TestMapRefusesInvalidUTF8(t *testing.T) {
	p := &Provider{Name: "demo"}
	p.Mapping.setDefaults()
	for _, body := range []string{"{\"type\":\"x\xff\"}", "{\"type\":\"x\",\"data\":{\"customerEmail\":\"\xfe@a\"}}"} {
		_, perr := Map(p, "wh_1", fuzzNow, []byte(body))
		require.NotNil(t, perr, "%q", body)
		require.Equal(t, http.StatusBadRequest, perr.Status)
	}
}
