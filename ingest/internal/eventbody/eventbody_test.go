package eventbody_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/ingest/internal/eventbody"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/jsonscan"
)

func TestSplitJSON(t *testing.T) {
	ev := `{"eventType":"a","userId":"u","timestamp":1}`
	tests := []struct {
		name   string
		body   string
		items  int
		single bool
		err    error
	}{
		{"single", " \n" + ev + "\n", 1, true, nil},
		{"array", "[" + ev + " , \n" + ev + "]", 2, false, nil},
		{"array padded", " [ " + ev + " ] \r\n", 1, false, nil},
		{"array of non-objects", `[1,"x",[]]`, 3, false, nil},
		{"empty", " ", 0, false, eventbody.ErrEmpty},
		{"empty array", "[ ]", 0, false, eventbody.ErrEmpty},
		{"empty array and garbage", "[]x", 0, false, eventbody.ErrMalformed},
		{"malformed single", `{"eventType":`, 0, false, eventbody.ErrMalformed},
		{"trailing garbage", ev + "}", 0, false, eventbody.ErrMalformed},
		{"trailing comma", "[" + ev + ",]", 0, false, eventbody.ErrMalformed},
		{"unclosed array", "[" + ev, 0, false, eventbody.ErrMalformed},
		{"two arrays", "[" + ev + "][]", 0, false, eventbody.ErrMalformed},
		{"too many", "[" + strings.Repeat(ev+",", 3) + ev + "]", 0, false, eventbody.ErrTooMany},
		{"too many and malformed", "[" + strings.Repeat(ev+",", 3) + ev + ",}", 0, false, eventbody.ErrMalformed},
		{"deepest item", "[" + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + "]", 1, false, nil},
		{"too deep item", "[" + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "]", 0, false, eventbody.ErrMalformed},
		{"too deep metadata", `[{"metadata":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + "}]", 0, false, eventbody.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, single, err := eventbody.Split(eventbody.FormatJSON, []byte(tt.body), 3)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Len(t, items, tt.items)
			require.Equal(t, tt.single, single)
			for _, it := range items {
				require.NoError(t, it.Err)
				require.True(t, json.Valid(it.Raw), "%q", it.Raw)
			}
		})
	}
}

func TestSplitNDJSON(t *testing.T) {
	body := "{\"eventType\":\"a\",\"userId\":\"u\",\"timestamp\":1}\r\n\n  {oops\n[1]\n\t{\"eventType\":\"b\"} \n"
	items, single, err := eventbody.Split(eventbody.FormatNDJSON, []byte(body), 10)
	require.NoError(t, err)
	require.False(t, single)
	require.Len(t, items, 4)
	require.Equal(t, "a", items[0].Fields.EventType)
	require.ErrorIs(t, items[1].Err, eventbody.ErrMalformed)
	require.Equal(t, "[1]", string(items[2].Raw))
	require.Equal(t, "b", items[3].Fields.EventType)

	_, _, err = eventbody.Split(eventbody.FormatNDJSON, []byte(body), 3)
	require.ErrorIs(t, err, eventbody.ErrTooMany)
	_, _, err = eventbody.Split(eventbody.FormatNDJSON, []byte("\n \n"), 3)
	require.ErrorIs(t, err, eventbody.ErrEmpty)
}

// normalizeCases are events whose stored form must be what decoding them
// with encoding/json and json.Marshal would store.
func normalizeCases() []string {
	return []string{
		`{"eventType":"page_view","userId":"u1","timestamp":1700000000,"metadata":{"path":"/","durationMs":1e3}}`,
		`{"eventType":"a","userId":"u","timestamp":1700000000123.6,"id":"x<y>&z"}`,
		`{"eventType":"a","userId":"é😀\u2028\n\"\\\u0001","timestamp":1.5}`,
		`{"eventType":"a","userId":"u","timestamp":1,"metadata":{ "b" : [ 1 , 2.50 , -0 ] , "a" : { } , "h":"<&>\u2029" }}`,
		`{"eventType":"a","userId":"u","timestamp":1,"metadata":{"a":1,"a":{"b":2}}}`,
		`{"eventType":"a","userId":"u","timestamp":1,"metadata":{"\u0061":1,"a":2}}`,
		`{"eventType":"a","userId":"u","userId":"v","timestamp":9999999999,"timestamp":1e10}`,
		`{"eventType":"order.created","userId":"u","timestamp":1,"metadata":{"id":"o","status":"s","amount":0,"currency":"EUR","customerEmail":"a@b.co","createdAt":1}}`,
	}
}

// invalidTextCases are events with text that is not valid UTF-8: refused,
// naming the field, where encoding/json would replace it with U+FFFD.
func invalidTextCases() map[string][]string {
	return map[string][]string{
		"{\"eventType\":\"a\",\"userId\":\"\xff\",\"timestamp\":1,\"metadata\":{\"k\":\"\xfe\"}}": {"userId", "metadata.k"},
		`{"eventType":"a","userId":"u","timestamp":1,"metadata":{"a":"\ud800"}}`:                  {"metadata.a"},
		`{"eventType":"a","userId":"u","timestamp":1,"metadata":{"a":{"b":["\udc00"]}}}`:          {"metadata.a"},
		"{\"eventType\":\"a\",\"userId\":\"u\",\"timestamp\":1,\"id\":\"\xf5x\"}":                 {"id"},
		"{\"eventType\":\"a\",\"userId\":\"u\",\"timestamp\":1,\"metadata\":{\"\xf5\":1}}":        {"metadata"},
	}
}

func TestNormalizeRefusesInvalidText(t *testing.T) {
	n := newNormalizer(t)
	for body, fields := range invalidTextCases() {
		items, _, err := eventbody.Split(eventbody.FormatJSON, []byte(body), 1)
		require.NoError(t, err)
		_, _, errs, _, _ := n.Normalize(&items[0], "", nil)
		var got []string
		for _, e := range errs {
			got = append(got, e.Field)
		}
		require.Equal(t, fields, got, "%q", body)
	}
}

func TestNormalizeMatchesDecoding(t *testing.T) {
	n := newNormalizer(t)
	for _, c := range normalizeCases() {
		require.True(t, checkNormalize(t, n, []byte(c)), "%s is valid", c)
	}
}

func FuzzNormalizeMatchesDecoding(f *testing.F) {
	for _, c := range normalizeCases() {
		f.Add([]byte(c))
	}
	for c := range invalidTextCases() {
		f.Add([]byte(c))
	}
	n := newNormalizer(f)
	f.Fuzz(func(t *testing.T, b []byte) { checkNormalize(t, n, b) })
}

func newNormalizer(tb testing.TB) *eventbody.Normalizer {
	reg, err := schemas.NewRegistry()
	require.NoError(tb, err)
	return &eventbody.Normalizer{Registry: reg, Now: func() time.Time { return time.UnixMilli(1234) }}
}

// checkNormalize holds Split, Normalize and AppendEvent on the single-event
// body b to decoding b with encoding/json: the same verdict, the same stored
// envelope (metadata compared as decoded JSON, since its key order may
// differ), and AppendEvent writing exactly what json.Marshal writes. It
// reports whether the event was valid.
func checkNormalize(t *testing.T, n *eventbody.Normalizer, b []byte) bool {
	items, _, err := eventbody.Split(eventbody.FormatJSON, b, 1)
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var doc any
	decodeErr := d.Decode(&doc)
	if trimmed := bytes.TrimLeft(b, " \t\r\n"); len(trimmed) == 0 || trimmed[0] == '[' {
		return false // array bodies: TestSplitJSON
	}
	require.Equal(t, json.Valid(b), err == nil, "Split verdict on %q: %v", b, err)
	if err != nil {
		require.ErrorIs(t, err, eventbody.ErrMalformed)
		return false
	}
	require.NoError(t, decodeErr)
	ev, _, errs, _, _ := n.Normalize(&items[0], "", nil)
	if !jsonscan.ValidText(items[0].Raw) {
		require.NotEmpty(t, errs, "invalid text is refused: %q", b)
		return false
	}
	require.Equal(t, n.Registry.Validate(doc), errs, "%q", b)
	if errs != nil {
		return false
	}
	m := doc.(map[string]any)
	require.Equal(t, m["eventType"], ev.EventType)
	require.Equal(t, m["userId"], ev.UserID)
	if id, ok := m["id"]; ok {
		require.Equal(t, id, ev.ID)
	} else {
		require.Len(t, ev.ID, 26, "a ULID")
	}
	ts, err := m["timestamp"].(json.Number).Float64()
	require.NoError(t, err)
	require.Equal(t, schemas.TimestampMillis(ts), ev.Timestamp)
	if md, ok := m["metadata"]; ok {
		want, err := json.Marshal(md)
		require.NoError(t, err)
		require.JSONEq(t, string(want), string(ev.Metadata), "%q", b)
		require.True(t, json.Valid(ev.Metadata))
	} else {
		require.Nil(t, ev.Metadata)
	}
	want, err := json.Marshal(ev)
	require.NoError(t, err)
	require.Equal(t, string(want), string(eventbody.AppendEvent(nil, &ev)), "%q", b)
	ev.Seq = 42
	want, err = json.Marshal(ev)
	require.NoError(t, err)
	require.Equal(t, string(want), string(eventbody.AppendEvent([]byte("x"), &ev)[1:]))
	ev.SchemaVersion = 7 // the version that validated it, stored before seq
	want, err = json.Marshal(ev)
	require.NoError(t, err)
	require.Equal(t, string(want), string(eventbody.AppendEvent(nil, &ev)))
	return true
}

func TestFormatOf(t *testing.T) {
	tests := []struct {
		contentType string
		want        eventbody.Format
		ok          bool
	}{
		{"application/json", eventbody.FormatJSON, true},
		{"application/json; charset=utf-8", eventbody.FormatJSON, true},
		{"application/cloudevents+json", eventbody.FormatJSON, true},
		// navigator.sendBeacon and fetch with a string body.
		{"text/plain;charset=UTF-8", eventbody.FormatJSON, true},
		{"text/plain", eventbody.FormatJSON, true},
		{"application/x-ndjson", eventbody.FormatNDJSON, true},
		{"application/jsonl", eventbody.FormatNDJSON, true},
		{"text/plain; charset=iso-8859-1", 0, false},
		{"text/html", 0, false},
		{"application/x-www-form-urlencoded", 0, false},
		{"multipart/form-data; boundary=x", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := eventbody.FormatOf(tt.contentType)
		if !tt.ok {
			require.ErrorIs(t, err, eventbody.ErrUnsupportedMediaType, "%q", tt.contentType)
			continue
		}
		require.NoError(t, err, "%q", tt.contentType)
		require.Equal(t, tt.want, got, "%q", tt.contentType)
	}
}
