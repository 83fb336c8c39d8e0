package schemas_test

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
)

// fastPathCase is one event text; fast says whether the fast path must
// decide it valid on its own (valid events of the common forms), so a fast
// path that always defers to jsonschema fails the test.
type fastPathCase struct {
	name string
	body string
	fast bool
}

func ev(fields string) string {
	return `{"eventType":"signup","userId":"u1","timestamp":1700000000` + fields + `}`
}

func withTS(ts string) string { return `{"eventType":"signup","userId":"u1","timestamp":` + ts + `}` }

func typed(eventType, metadata string) string {
	return `{"eventType":"` + eventType + `","userId":"u1","timestamp":1700000000000,"metadata":` + metadata + `}`
}

const (
	orderCreated  = `{"id":"o1","status":"new","amount":12.5,"currency":"EUR","customerEmail":"a@b.co","createdAt":"2026-01-01T00:00:00Z"}`
	orderCanceled = `{"id":"o1","status":"canceled","reason":"","createdAt":1700000000}`
)

func fastPathCases() []fastPathCase {
	r := strings.Repeat
	return []fastPathCase{
		// Valid, decided by the fast path.
		{"minimal seconds", ev(``), true},
		{"whitespace", " \n\t{ \"eventType\" : \"signup\" ,\r\"userId\":\"u1\", \"timestamp\" : 1 } \n", true},
		{"id", ev(`,"id":"abc"`), true},
		{"id 128", ev(`,"id":"` + r("i", 128) + `"`), true},
		{"id 128 runes", ev(`,"id":"` + r("é", 128) + `"`), true},
		{"unregistered metadata", ev(`,"metadata":{"x":[1,{"y":null}],"z":"\u00e9"}`), true},
		{"empty metadata", ev(`,"metadata":{}`), true},
		{"unicode user", `{"eventType":"a","userId":"ü😀","timestamp":1}`, true},
		{"escaped user", `{"eventType":"a","userId":"\u00fc\ud83d\ude00\n\"","timestamp":1}`, true},
		{"invalid utf8 user", "{\"eventType\":\"a\",\"userId\":\"\xff\",\"timestamp\":1}", true},
		{"lone surrogate user", `{"eventType":"a","userId":"\ud800","timestamp":1}`, true},
		{"user 256 runes", `{"eventType":"a","userId":"` + r("😀", 256) + `","timestamp":1}`, true},
		{"user 256 invalid bytes", "{\"eventType\":\"a\",\"userId\":\"" + r("\xff", 256) + "\",\"timestamp\":1}", true},
		{"event type 128", `{"eventType":"` + r("a.", 63) + `ab","userId":"u","timestamp":1}`, true},
		{"event type charset", `{"eventType":"Az09_-.x-Y_9","userId":"u","timestamp":1}`, true},
		{"escaped event type", `{"eventType":"\u0070age_view","userId":"u","timestamp":1}`, true},
		{"escaped key", `{"\u0065ventType":"a","userId":"u","timestamp":1}`, true},
		{"ts 1e3", withTS(`1e3`), true},
		{"ts 1E+3", withTS(`1E+3`), true},
		{"ts 1.0", withTS(`1.0`), true},
		{"ts fraction", withTS(`0.001`), true},
		{"ts tiny", withTS(`1e-1000`), true},
		{"ts 100 chars", withTS(`1.` + r("0", 98)), true},
		{"ts max", withTS(`253402300799999`), true},
		{"ts max float", withTS(`253402300799999.000`), true},
		{"ts max exp", withTS(`2.53402300799999e14`), true},
		{"ts max exp2", withTS(`0.0253402300799999E16`), true},
		{"ts below max", withTS(`253402300799998.9999`), true},
		{"ts huge int below", withTS(`099`), false}, // malformed, never read
		{"duplicate key last wins", `{"eventType":"a","userId":1,"userId":"u","timestamp":1}`, true},
		{"duplicate metadata", `{"eventType":"a","userId":"u","timestamp":1,"metadata":1,"metadata":{}}`, true},
		{"page_view", typed("page_view", `{"path":"/","referrer":"x","durationMs":1e3}`), true},
		{"page_view no metadata", `{"eventType":"page_view","userId":"u","timestamp":1}`, true},
		{"page_view path 2048", typed("page_view", `{"path":"`+r("p", 2048)+`"}`), true},
		{"page_view -0", typed("page_view", `{"durationMs":-0}`), true},
		{"page_view extra", typed("page_view", `{"other":[1e5000]}`), false},
		{"order.created", typed("order.created", orderCreated), true},
		{"order.canceled", typed("order.canceled", orderCanceled), true},
		{"payment.failed", typed("payment.failed", `{"amount":0,"currency":"USD"}`), true},
		{"payment.failed tiny", typed("payment.failed", `{"amount":1e-5,"currency":"USD","orderId":"o"}`), true},

		{"page_view escaped path 2048", typed("page_view", `{"path":"`+r(`\u00e9`, 2048)+`"}`), true},
		{"page_view durationMs -0.0e5", typed("page_view", `{"durationMs":-0.0e5}`), true},
		{"page_view durationMs 0e0", typed("page_view", `{"durationMs":0e0}`), true},
		{"page_view escaped key", typed("page_view", `{"\u0070ath":"/"}`), true},
		{"page_view unicode referrer", typed("page_view", `{"referrer":"é😀\n"}`), true},
		{"order.canceled numeric createdAt", typed("order.canceled", strings.Replace(orderCanceled, `1700000000`, `1.5e3`, 1)), true},
		{"order.created plus email", typed("order.created", strings.Replace(orderCreated, "a@b.co", "a.b+c@d-e.example", 1)), true},
		{"order.created escaped currency", typed("order.created", strings.Replace(orderCreated, `"EUR"`, `"\u0045UR"`, 1)), true},
		{"payment.failed duplicate amount", typed("payment.failed", `{"amount":-1,"amount":1,"currency":"USD"}`), false}, // valid, left to jsonschema
		{"payment.failed extra", typed("payment.failed", `{"amount":1,"currency":"USD","x":{"y":[true,null]}}`), true},

		// Invalid: the fast path must defer, the schema explains.
		{"page_view escaped path 2049", typed("page_view", `{"path":"`+r(`\u00e9`, 2049)+`"}`), false},
		{"page_view path number", typed("page_view", `{"path":1}`), false},
		{"page_view durationMs string", typed("page_view", `{"durationMs":"1"}`), false},
		{"page_view durationMs -1e-5", typed("page_view", `{"durationMs":-1e-5}`), false},
		{"page_view escaped key bad", typed("page_view", `{"\u0070ath":1}`), false},
		{"page_view deep untamed", typed("page_view", `{"x":{"y":[1,2,1e99999]}}`), false},
		{"order.created status empty", typed("order.created", strings.Replace(orderCreated, `"new"`, `""`, 1)), false},
		{"order.created currency newline", typed("order.created", strings.Replace(orderCreated, `"EUR"`, `"EUR\n"`, 1)), false},
		{"order.created currency unicode", typed("order.created", strings.Replace(orderCreated, `"EUR"`, `"ÉUR"`, 1)), false},
		{"order.created currency long", typed("order.created", strings.Replace(orderCreated, `"EUR"`, `"EURO"`, 1)), false},
		{"order.created email no at", typed("order.created", strings.Replace(orderCreated, "a@b.co", "a.b.co", 1)), false},
		{"order.created email null", typed("order.created", strings.Replace(orderCreated, `"a@b.co"`, `null`, 1)), false},
		{"order.created createdAt bool", typed("order.created", strings.Replace(orderCreated, `"2026-01-01T00:00:00Z"`, `true`, 1)), false},
		{"order.created missing id", typed("order.created", strings.Replace(orderCreated, `"id":"o1",`, ``, 1)), false},
		{"order.canceled reason number", typed("order.canceled", strings.Replace(orderCanceled, `"reason":""`, `"reason":5`, 1)), false},
		{"payment.failed duplicate bad amount", typed("payment.failed", `{"amount":1,"amount":-1,"currency":"USD"}`), false},
		{"not object array", `[]`, false},
		{"not object string", `"x"`, false},
		{"not object number", `1`, false},
		{"null", `null`, false},
		{"empty object", `{}`, false},
		{"missing user", `{"eventType":"a","timestamp":1}`, false},
		{"missing type", `{"userId":"u","timestamp":1}`, false},
		{"missing ts", `{"eventType":"a","userId":"u"}`, false},
		{"null user", `{"eventType":"a","userId":null,"timestamp":1}`, false},
		{"empty user", `{"eventType":"a","userId":"","timestamp":1}`, false},
		{"user 257 runes", `{"eventType":"a","userId":"` + r("😀", 257) + `","timestamp":1}`, false},
		{"user 257 invalid bytes", "{\"eventType\":\"a\",\"userId\":\"" + r("\xff", 257) + "\",\"timestamp\":1}", false},
		{"user number", `{"eventType":"a","userId":7,"timestamp":1}`, false},
		{"duplicate key last invalid", `{"eventType":"a","userId":"u","userId":1,"timestamp":1}`, false},
		{"empty id", ev(`,"id":""`), false},
		{"id 129", ev(`,"id":"` + r("i", 129) + `"`), false},
		{"id number", ev(`,"id":5`), false},
		{"id null", ev(`,"id":null`), false},
		{"empty type", `{"eventType":"","userId":"u","timestamp":1}`, false},
		{"type 129", `{"eventType":"` + r("a", 129) + `","userId":"u","timestamp":1}`, false},
		{"type dots", `{"eventType":"a..b","userId":"u","timestamp":1}`, false},
		{"type leading dot", `{"eventType":".a","userId":"u","timestamp":1}`, false},
		{"type trailing dot", `{"eventType":"a.","userId":"u","timestamp":1}`, false},
		{"type space", `{"eventType":"a b","userId":"u","timestamp":1}`, false},
		{"type newline", `{"eventType":"a\n","userId":"u","timestamp":1}`, false},
		{"type nul", `{"eventType":"a\u0000","userId":"u","timestamp":1}`, false},
		{"type unicode", `{"eventType":"é","userId":"u","timestamp":1}`, false},
		{"type invalid utf8", "{\"eventType\":\"a\xff\",\"userId\":\"u\",\"timestamp\":1}", false},
		{"type number", `{"eventType":1,"userId":"u","timestamp":1}`, false},
		{"extra field", ev(`,"seq":4`), false},
		{"extra null field", ev(`,"x":null`), false},
		{"case of a field", ev(`,"Metadata":{}`), false},
		{"metadata null", ev(`,"metadata":null`), false},
		{"metadata array", ev(`,"metadata":[]`), false},
		{"metadata string", ev(`,"metadata":"{}"`), false},
		{"ts string", withTS(`"1700000000"`), false},
		{"ts null", withTS(`null`), false},
		{"ts bool", withTS(`true`), false},
		{"ts zero", withTS(`0`), false},
		{"ts minus zero", withTS(`-0`), false},
		{"ts zero float", withTS(`0.000e5`), false},
		{"ts negative", withTS(`-1`), false},
		{"ts just over", withTS(`253402300799999.0001`), false},
		{"ts over", withTS(`253402300800000`), false},
		{"ts max and a half", withTS(`253402300799999.5`), false},
		{"ts max in tenths", withTS(`2534023007999990e-1`), true},
		{"ts over exp", withTS(`2.534023008e14`), false},
		{"ts huge int", withTS(r("9", 40)), false},
		{"ts huge exp", withTS(`1e1001`), false},
		{"ts tiny exp", withTS(`1e-1001`), false},
		{"ts panics big.Rat", withTS(`1e2000000`), false},
		{"ts 101 chars", withTS(`1.` + r("0", 99)), false},
		{"page_view path 2049", typed("page_view", `{"path":"`+r("p", 2049)+`"}`), false},
		{"page_view negative", typed("page_view", `{"durationMs":-1}`), false},
		{"page_view metadata array", typed("page_view", `[]`), false},
		{"page_view untamed", typed("page_view", `{"durationMs":1e-2000000}`), false},
		{"order.canceled no metadata", `{"eventType":"order.canceled","userId":"u","timestamp":1}`, false},
		{"order.canceled missing", typed("order.canceled", `{"id":"o"}`), false},
		{"order.created email", typed("order.created", strings.Replace(orderCreated, "a@b.co", "nope", 1)), false},
		{"payment.failed currency", typed("payment.failed", `{"amount":1,"currency":"usd"}`), false},
		{"payment.failed amount string", typed("payment.failed", `{"amount":"1","currency":"USD"}`), false},
		{"payment.failed amount", typed("payment.failed", `{"amount":-1e-9,"currency":"USD"}`), false},
		{"malformed", `{"eventType":"a",}`, false},
		{"deepest metadata", ev(`,"metadata":{"x":` + r("[", 9998) + r("]", 9998) + `}`), true},
		{"too deep metadata", ev(`,"metadata":{"x":` + r("[", 9999) + r("]", 9999) + `}`), false},
		{"too deep member", ev(`,"x":` + r("[", 10000) + r("]", 10000)), false},
		{"trailing data", ev(``) + `{}`, false},
	}
}

func TestFastPathAgreesWithSchema(t *testing.T) {
	reg, err := schemas.NewRegistry()
	require.NoError(t, err)
	for _, typ := range reg.Types() {
		require.True(t, reg.ScansMetadata(typ), "the fast path checks %s metadata itself", typ)
	}
	for _, tc := range fastPathCases() {
		t.Run(tc.name, func(t *testing.T) {
			fast := checkFastPath(t, reg, []byte(tc.body))
			require.Equal(t, tc.fast, fast, "fast path verdict")
		})
	}
}

func FuzzFastPathAgreesWithSchema(f *testing.F) {
	for _, tc := range fastPathCases() {
		f.Add([]byte(tc.body))
	}
	reg, err := schemas.NewRegistry()
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, b []byte) { checkFastPath(t, reg, b) })
}

// checkFastPath holds the fast path to the JSON Schema on the text b: if the
// fast path says valid, so does the schema, and Validate and ValidateFields
// answer exactly what the schema answers. It returns the fast verdict.
func checkFastPath(t *testing.T, reg *schemas.Registry, b []byte) bool {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var doc any
	err := d.Decode(&doc)
	if err == nil {
		if _, err = d.Token(); err == io.EOF {
			err = nil
		} else if err == nil {
			err = io.ErrUnexpectedEOF // more data after the value
		}
	}
	fast, read := reg.FastValid(b)
	if err != nil {
		require.False(t, read, "ReadEvent read malformed %q", b)
		return false
	}
	require.True(t, read, "ReadEvent refused well-formed %q", b)
	want := reg.SchemaErrors(doc)
	if fast {
		require.Nil(t, want, "fast path accepted %q", b)
	}
	require.Equal(t, want, reg.Validate(doc), "Validate %q", b)
	f, ok := schemas.ReadEvent(b)
	require.True(t, ok)
	require.Equal(t, want, reg.ValidateFields(&f, b), "ValidateFields %q", b)
	return fast
}

// TestOddFieldNames checks that field errors name fields whose names hold
// quotes, commas and escapes whole (jsonschema quotes them in its messages).
func TestOddFieldNames(t *testing.T) {
	reg, err := schemas.NewRegistry()
	require.NoError(t, err)
	doc := decode(t, `{"eventType":"a","userId":"u","timestamp":1,"it's":1,"a', 'b":2,"\"q\"":3,"\\":4,"é\n":5,"":6}`)
	require.Equal(t, []schemas.FieldError{
		{Field: "", Message: "is not an allowed field"},
		{Field: `"q"`, Message: "is not an allowed field"},
		{Field: `\`, Message: "is not an allowed field"},
		{Field: "a', 'b", Message: "is not an allowed field"},
		{Field: "it's", Message: "is not an allowed field"},
		{Field: "é\n", Message: "is not an allowed field"},
	}, reg.Validate(doc))
}
