package jsonscan_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas/jsonscan"
)

// seeds are texts around every rule of the grammar, valid and not.
func seeds() []string {
	s := []string{
		``, ` `, `{}`, `[]`, `{ }`, `[ ]`, ` {"a" : 1 } `, `{"a":1,}`, `[1,]`, `[,1]`, `{,}`, `{"a"}`, `{"a":}`,
		`{"a":1 "b":2}`, `{a:1}`, `{'a':1}`, `{"a":1}}`, `[[[]]]`, `[[[]]`, `]`, `}`, `:`, `,`,
		`0`, `-0`, `01`, `-01`, `1.`, `.5`, `1.5`, `-1.5e10`, `1e`, `1e+`, `1E-7`, `1e07`, `+1`, `--1`, `0x10`,
		`1.5.5`, `1e5e5`, `Infinity`, `NaN`, `-`, `0.0e-0`, `123456789012345678901234567890`,
		`true`, `false`, `null`, `tru`, `nulll`, `True`, `nul`, `truex`, `[true,false,null]`,
		`""`, `"a"`, `"\""`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u00e9"`, `"\u00E9"`, `"\u00g9"`, `"\u00e"`,
		`"\x"`, `"\'"`, "\"\x01\"", "\"\x7f\"", "\"\xff\"", "\"\xe2\x80\xa8\"", "\"é😀\"", `"\ud83d\ude00"`, `"\ud800"`,
		`"unterminated`, `"a"b`, `"<>&"`, `{"<a>":"&amp;"}`, "{\"a\"\n:\t[1 ,\r2]}", `{"a":{"b":{"c":[1,{"d":null}]}}}`,
		`{"a":1,"a":2}`, `{"\u0061":1,"a":2}`, "{\"\xff\":1}", `[{"a":1},{"a":1}]`, `{"a":[{"a":1,"b":2}]}`,
		`{"eventType":"page_view","userId":"u","timestamp":1700000000,"metadata":{"path":"/"}}`,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
	}
	return s
}

func FuzzScan(f *testing.F) {
	for _, s := range seeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkAgainstEncodingJSON(t, b) })
}

func TestSeedsAgreeWithEncodingJSON(t *testing.T) {
	for _, s := range seeds() {
		checkAgainstEncodingJSON(t, []byte(s))
	}
}

// checkAgainstEncodingJSON holds jsonscan to encoding/json on b: the same
// well-formedness verdict, the same decoded value and the same compaction.
func checkAgainstEncodingJSON(t *testing.T, b []byte) {
	valid := json.Valid(b)
	kind, ok := jsonscan.Whole(b)
	require.Equal(t, valid, ok, "well-formed? %q", b)

	compact, ok := jsonscan.AppendCompact([]byte("x"), b)
	want, err := json.Marshal(json.RawMessage(b))
	require.Equal(t, err == nil, ok, "compact %q", b)
	if !valid {
		require.Equal(t, "x", string(compact))
		return
	}
	require.Equal(t, "x"+string(want), string(compact), "compact %q", b)
	require.Equal(t, string(want), string(jsonscan.AppendCompactValid(nil, b)), "compact %q", b)

	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var ref any
	require.NoError(t, d.Decode(&ref))
	got, ok := jsonscan.Decode(b)
	require.True(t, ok)
	require.Equal(t, ref, got, "decode %q", b)
	require.Equal(t, jsonscan.KindOf(ref), kind, "kind %q", b)
	if jsonscan.Unambiguous(b) {
		require.True(t, utf8.Valid(b), "unambiguous %q", b)
		require.False(t, repeatsKey(t, b), "unambiguous %q", b)
	}
}

// repeatsKey reports whether an object in the well-formed b names a key
// twice, read with encoding/json's tokenizer.
func repeatsKey(t *testing.T, b []byte) bool {
	type frame struct {
		object  bool
		wantKey bool
		keys    map[string]bool
	}
	var stack []*frame
	d := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return false
		}
		require.NoError(t, err)
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if key, ok := tok.(string); ok && top != nil && top.object && top.wantKey {
			if top.keys[key] {
				return true
			}
			top.keys[key], top.wantKey = true, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, wantKey: true, keys: map[string]bool{}})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				top = stack[len(stack)-1]
			} else {
				top = nil
			}
		}
		if top != nil && top.object {
			top.wantKey = true // a value ended
		}
	}
}

func TestUnambiguous(t *testing.T) {
	tests := []struct {
		doc  string
		want bool
	}{
		{`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":1}]}`, true},
		{`{"path":"/é","n":[1,2,{"x":null}]}`, true},
		{`"x"`, true},
		{`{"a":1,"a":2}`, false},
		{`{"a":{"b":1,"b":1}}`, false},
		{`[{"b":1,"c":2,"b":3}]`, false},
		{`{"\u0061":1}`, false},
		{"{\"a\":\"\xff\"}", false},
		{`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k0":0}`, false},
		{`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17}`, true},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, jsonscan.Unambiguous([]byte(tt.doc)), tt.doc)
	}
	// Around the switch from a list of seen keys to a set.
	for n := 1; n <= 40; n++ {
		var keys []string
		for k := range n {
			keys = append(keys, fmt.Sprintf(`"k%d":%d`, k, k))
		}
		doc := "{" + strings.Join(keys, ",") + "}"
		require.True(t, jsonscan.Unambiguous([]byte(doc)), doc)
		for j := range n {
			doc := "{" + strings.Join(keys, ",") + "," + keys[j] + "}"
			require.False(t, jsonscan.Unambiguous([]byte(doc)), doc)
		}
	}
}

func TestDecodeStringMatchesEncodingJSON(t *testing.T) {
	for _, tok := range []string{`""`, `"abc"`, `"é😀"`, "\"\xff\xfe\"", `"\u00e9\n\"\\"`, `"\ud800x"`, `"\ud83d\ude00"`} {
		end, simple, ok := jsonscan.ScanString([]byte(tok), 0)
		require.True(t, ok, tok)
		require.Equal(t, len(tok), end, tok)
		var want string
		require.NoError(t, json.Unmarshal([]byte(tok), &want))
		require.Equal(t, want, jsonscan.DecodeString([]byte(tok), simple), tok)
	}
}
