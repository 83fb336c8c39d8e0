package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/schemas"
)

const jsonType = "application/json"

func TestAcceptedEventIsInStream(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	r := h.post(t, jsonType, `{"eventType":"page_view","userId":"u1","timestamp":1700000000,"metadata":{"path":"/"}}`)
	require.Equal(t, 202, r.status, "%v", r.body)
	require.Equal(t, true, r.body["accepted"])
	require.Equal(t, false, r.body["duplicate"])
	id := r.body["id"].(string)
	require.Len(t, id, 26, "a ULID")

	s, err := h.js.Stream(context.Background(), schemas.StreamName)
	require.NoError(t, err)
	msg, err := s.GetMsg(context.Background(), uint64(r.body["seq"].(float64)))
	require.NoError(t, err)
	require.Equal(t, "events.page_view", msg.Subject)
	require.Equal(t, id, msg.Header.Get(nats.MsgIdHdr))
	require.Equal(t, "u1", msg.Header.Get(schemas.HeaderUserID))
	var ev schemas.Event
	require.NoError(t, json.Unmarshal(msg.Data, &ev))
	require.Equal(t, id, ev.ID)
	require.Equal(t, int64(1700000000000), ev.Timestamp, "seconds are stored as ms")
	require.JSONEq(t, `{"path":"/"}`, string(ev.Metadata))
	require.InDelta(t, time.Now().UnixMilli(), ev.ReceivedAt, 60_000)
	require.Zero(t, ev.Seq, "seq is not part of the stored body")
}

func TestDuplicateWithinWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	tests := []struct {
		name    string
		body    string
		headers []string
	}{
		{"event id", `{"id":"client-1","eventType":"dup.a","userId":"u","timestamp":1}`, nil},
		{"Idempotency-Key", `{"eventType":"dup.b","userId":"u","timestamp":1}`, []string{"Idempotency-Key", "key-1"}},
	}
	for _, tt := range tests {
		first := h.post(t, jsonType, tt.body, tt.headers...)
		require.Equal(t, 202, first.status, "%s: %v", tt.name, first.body)
		second := h.post(t, jsonType, tt.body, tt.headers...)
		require.Equal(t, 202, second.status, tt.name)
		require.Equal(t, true, second.body["duplicate"], tt.name)
		require.Equal(t, first.body["seq"], second.body["seq"], tt.name)
		require.Equal(t, first.body["id"], second.body["id"], tt.name)
	}
	require.EqualValues(t, 1, h.count(t, "events.dup.a"))
	require.EqualValues(t, 1, h.count(t, "events.dup.b"))
}

func TestDuplicateAfterWindowStaysOneEvent(t *testing.T) {
	t.Parallel()
	const window = 200 * time.Millisecond
	h := newHarness(t, func(c *ingest.Config) { c.Stream.DuplicateWindow = window })
	body := `{"id":"late-1","eventType":"late","userId":"u","timestamp":1}`
	first := h.post(t, jsonType, body)
	require.Equal(t, 202, first.status, "%v", first.body)

	// Prove JetStream's window has passed: a probe id stops being reported
	// as a duplicate only once its window expired.
	ctx := context.Background()
	_, err := h.js.Publish(ctx, "events.probe", nil, jetstream.WithMsgID("probe"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		ack, err := h.js.Publish(ctx, "events.probe", nil, jetstream.WithMsgID("probe"))
		return err == nil && !ack.Duplicate
	}, 3*time.Minute, 50*time.Millisecond)

	late := h.post(t, jsonType, body)
	require.Equal(t, 202, late.status, "%v", late.body)
	require.Equal(t, true, late.body["duplicate"], "the durable ledger remembers the id")
	require.Equal(t, first.body["seq"], late.body["seq"], "answered with the original sequence")
	require.EqualValues(t, 1, h.count(t, "events.late"), "the late copy is not left in the stream")
}

func TestBatchKeepsValidReportsInvalid(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	invalid := map[int]string{
		7:   `{"eventType":"batch","timestamp":1}`,
		500: `{"eventType":"batch","userId":"u","timestamp":"yesterday"}`,
		999: `{"eventType":"bad type!","userId":"u","timestamp":1}`,
	}
	for _, format := range []struct{ ctype, sep, open, close, subject string }{
		{jsonType, ",", "[", "]", "batch"},
		{"application/x-ndjson", "\n", "", "\n", "batch"},
	} {
		lines := make([]string, 1000)
		for i := range lines {
			if bad, ok := invalid[i]; ok {
				lines[i] = strings.Replace(bad, `"batch"`, `"batch.`+format.ctype[12:14]+`"`, 1)
				continue
			}
			lines[i] = fmt.Sprintf(`{"eventType":"batch.%s","userId":"u%d","timestamp":%d}`, format.ctype[12:14], i, 1700000000000+i)
		}
		r := h.post(t, format.ctype, format.open+strings.Join(lines, format.sep)+format.close)
		require.Equal(t, 202, r.status, "%s: %v", format.ctype, r.body["title"])
		require.EqualValues(t, 997, r.body["accepted"])
		require.EqualValues(t, 3, r.body["rejected"])
		results := r.body["results"].([]any)
		require.Len(t, results, 1000)
		for i, res := range results {
			item := res.(map[string]any)
			require.EqualValues(t, i, item["index"])
			if _, bad := invalid[i]; bad {
				perr := item["error"].(map[string]any)
				require.Equal(t, "Invalid event format", perr["title"])
				errs := perr["errors"].([]any)
				require.NotEmpty(t, errs)
				require.EqualValues(t, i, errs[0].(map[string]any)["index"])
				continue
			}
			require.Nil(t, item["error"])
			require.NotZero(t, item["seq"])
		}
		require.EqualValues(t, 997, h.count(t, "events.batch."+format.ctype[12:14]))
	}
}

func TestBadRequestsGetProblems(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *ingest.Config) {
		c.MaxBodyBytes = 4096
		c.MaxBatch = 3
	})
	valid := `{"eventType":"t","userId":"u","timestamp":1}`
	tests := []struct {
		name   string
		ctype  string
		body   string
		status int
		fields []string // expected errors[].field, in order
	}{
		{"malformed json", jsonType, `{"eventType":`, 400, nil},
		{"trailing garbage", jsonType, valid + `}`, 400, nil},
		{"not an object", jsonType, `"hello"`, 400, []string{""}},
		{"wrong types", jsonType, `{"eventType":1,"userId":["u"],"timestamp":"x"}`, 400, []string{"eventType", "timestamp", "userId"}},
		{"missing fields", jsonType, `{}`, 400, []string{"eventType", "timestamp", "userId"}},
		{"metadata not object", jsonType, `{"eventType":"t","userId":"u","timestamp":1,"metadata":[]}`, 400, []string{"metadata"}},
		{"registered schema", jsonType, `{"eventType":"order.created","userId":"u","timestamp":1,"metadata":{"id":"o"}}`, 400,
			[]string{"metadata.amount", "metadata.createdAt", "metadata.currency", "metadata.customerEmail", "metadata.status"}},
		{"empty body", jsonType, ``, 400, nil},
		{"empty array", jsonType, `[]`, 400, nil},
		{"all invalid batch", jsonType, `[{},{}]`, 400, []string{"eventType", "timestamp", "userId", "eventType", "timestamp", "userId"}},
		{"year 9999", jsonType, `{"eventType":"t","userId":"u","timestamp":253402300799999}`, 400, []string{"timestamp"}},
		{"a day and more ahead, seconds", jsonType, `{"eventType":"t","userId":"u","timestamp":` +
			strconv.FormatInt(time.Now().Add(25*time.Hour).Unix(), 10) + `}`, 400, []string{"timestamp"}},
		{"oversize body", jsonType, `{"eventType":"t","userId":"` + strings.Repeat("x", 5000) + `","timestamp":1}`, 413, nil},
		{"too many events", jsonType, "[" + strings.Repeat(valid+",", 3) + valid + "]", 413, nil},
		{"wrong content type", "text/html", valid, 415, nil},
		{"form", "application/x-www-form-urlencoded", valid, 415, nil},
		{"text in latin1", "text/plain; charset=iso-8859-1", valid, 415, nil},
		{"malformed text/plain", "text/plain;charset=UTF-8", `{"eventType":`, 400, nil},
		{"invalid text/plain", "text/plain;charset=UTF-8", `{}`, 400, []string{"eventType", "timestamp", "userId"}},
		{"no content type", "", valid, 415, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.post(t, tt.ctype, tt.body)
			requireProblem(t, r, tt.status)
			if tt.status == 400 && tt.fields != nil {
				require.Equal(t, "Invalid event format", r.body["title"])
				var fields []string
				for _, e := range r.body["errors"].([]any) {
					fields = append(fields, e.(map[string]any)["field"].(string))
				}
				require.Equal(t, tt.fields, fields)
			}
		})
	}
	require.Zero(t, h.count(t, "events.>"), "no bad request stored anything")
}

// TestTextPlainBodiesAreReadAsJSON: navigator.sendBeacon and fetch with a
// string body send text/plain;charset=UTF-8 (a CORS-safelisted type, so no
// preflight), and a page posting its last events while it unloads can send
// nothing else without a preflight. The body is read as JSON: one object or
// an array.
func TestTextPlainBodiesAreReadAsJSON(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, ctype := range []string{"text/plain;charset=UTF-8", "text/plain"} {
		r := h.post(t, ctype, `{"eventType":"beacon","userId":"u","timestamp":1}`)
		require.Equal(t, 202, r.status, "%s: %v", ctype, r.body)
		require.Equal(t, true, r.body["accepted"])
		require.NotEmpty(t, r.body["id"])
	}
	r := h.post(t, "text/plain;charset=UTF-8", `[{"eventType":"beacon","userId":"u","timestamp":1},{"eventType":"beacon","userId":"u","timestamp":2}]`)
	require.Equal(t, 202, r.status, "%v", r.body)
	require.EqualValues(t, 2, r.body["accepted"])
	require.EqualValues(t, 4, h.count(t, "events.beacon"))
}

func TestNDJSONMalformedLineIsReportedAlone(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	r := h.post(t, "application/x-ndjson", "{\"eventType\":\"nd\",\"userId\":\"u\",\"timestamp\":1}\n{oops\n\n{\"eventType\":\"nd\",\"userId\":\"u\",\"timestamp\":2}\n")
	require.Equal(t, 202, r.status)
	require.EqualValues(t, 2, r.body["accepted"])
	require.EqualValues(t, 1, r.body["rejected"])
	require.NotNil(t, r.body["results"].([]any)[1].(map[string]any)["error"])
	require.EqualValues(t, 2, h.count(t, "events.nd"))
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *ingest.Config) { c.APIKeys = []string{"secret-1", "secret-2"} })
	body := `{"eventType":"auth","userId":"u","timestamp":1}`
	requireProblem(t, h.post(t, jsonType, body), 401)
	requireProblem(t, h.post(t, jsonType, body, "Authorization", "Bearer wrong"), 401)
	requireProblem(t, h.post(t, jsonType, body, "X-API-Key", "secret-3"), 401)
	require.Equal(t, 202, h.post(t, jsonType, body, "Authorization", "Bearer secret-1").status)
	require.Equal(t, 202, h.post(t, jsonType, body, "X-API-Key", "secret-2").status)
	require.EqualValues(t, 2, h.count(t, "events.auth"))
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *ingest.Config) { c.RateLimit = 2 })
	body := `{"eventType":"rl","userId":"u","timestamp":1}`
	var limited response
	for range 6 {
		if r := h.post(t, jsonType, body); r.status == 429 {
			limited = r
		}
	}
	requireProblem(t, limited, 429)
	require.NotEmpty(t, limited.header.Get("Retry-After"))
}

func TestJetStreamDownIs503AndWritesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	body := `{"id":"during-outage","eventType":"outage","userId":"u","timestamp":1}`
	h.nats.Shutdown()

	start := time.Now()
	r := h.post(t, jsonType, body)
	requireProblem(t, r, 503)
	require.Less(t, time.Since(start), 2*time.Second)
	require.NotEmpty(t, r.header.Get("Retry-After"))
	b := h.post(t, jsonType, "["+body+"]")
	requireProblem(t, b, 503)
	require.EqualValues(t, 1, b.body["failed"])

	h.nats.Restart(t)
	require.Eventually(t, func() bool {
		return h.post(t, jsonType, `{"eventType":"after","userId":"u","timestamp":1}`).status == 202
	}, 3*time.Minute, 100*time.Millisecond)
	require.Zero(t, h.count(t, "events.outage"), "nothing from the outage landed later")
	ok := h.post(t, jsonType, body)
	require.Equal(t, 202, ok.status)
	require.Equal(t, false, ok.body["duplicate"], "the retry is stored once")
}
