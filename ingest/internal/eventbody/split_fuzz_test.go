package eventbody_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/kilnhq/kiln/ingest/internal/eventbody"
)

// FuzzSplitNDJSON holds Split on NDJSON bodies to reading them line by
// line with encoding/json: one item per non-blank line (trimmed), in order;
// a line encoding/json accepts is an item with its text, any other fails
// alone as malformed; more lines than the limit, or none, fail the body.
func FuzzSplitNDJSON(f *testing.F) {
	for _, seed := range []string{
		"{\"eventType\":\"a\",\"userId\":\"u\",\"timestamp\":1}\r\n\n  {oops\n[1]\n\t{\"eventType\":\"b\"} \n",
		"{\"eventType\":\"page_view\",\"userId\":\"u1\",\"timestamp\":1700000000,\"metadata\":{\"path\":\"/\"}}\n",
		"\n \n",
		"{\"a\":1}{\"b\":2}\n\"x\"\n1e999\n{\"id\":\"\xf5x\"}\n",
		"{\"eventType\":\"a\",\"metadata\":{\"k\":\"line\\nbreak\"}}\r\n{\"eventType\":\"a\"\n}\n",
		"\xef\xbb\xbf{\"eventType\":\"a\"}\n\x00\n",
	} {
		f.Add([]byte(seed), 3)
	}
	f.Fuzz(func(t *testing.T, body []byte, max int) {
		max = 1 + (max%8+8)%8 // 1..8
		items, single, err := eventbody.Split(eventbody.FormatNDJSON, body, max)
		if single {
			t.Fatal("an NDJSON body is never the single-object form")
		}
		var lines [][]byte
		for line := range bytes.Lines(body) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				lines = append(lines, line)
			}
		}
		switch {
		case len(lines) == 0:
			if !errors.Is(err, eventbody.ErrEmpty) {
				t.Fatalf("no lines: %v", err)
			}
			return
		case len(lines) > max:
			if !errors.Is(err, eventbody.ErrTooMany) {
				t.Fatalf("%d lines over %d: %v", len(lines), max, err)
			}
			return
		case err != nil:
			t.Fatalf("%q: %v", body, err)
		}
		if len(items) != len(lines) {
			t.Fatalf("%d items for %d lines", len(items), len(lines))
		}
		for i, it := range items {
			valid := json.Valid(lines[i])
			switch {
			case valid && it.Err != nil:
				t.Fatalf("line %d %q refused: %v", i, lines[i], it.Err)
			case !valid && !errors.Is(it.Err, eventbody.ErrMalformed):
				t.Fatalf("line %d %q accepted (%v)", i, lines[i], it.Err)
			case valid && !bytes.Equal(it.Raw, lines[i]):
				t.Fatalf("line %d: item %q, line %q", i, it.Raw, lines[i])
			}
		}
	})
}

// FuzzSplitJSONArray holds Split on array bodies to encoding/json: a
// well-formed array of 1..limit values is its elements' text, in order;
// anything not well-formed fails as malformed.
func FuzzSplitJSONArray(f *testing.F) {
	for _, seed := range []string{
		`[{"eventType":"a","userId":"u","timestamp":1},{"eventType":"b"}]`,
		` [ {"a":1} , {"b":[1,2,{"c":"]"}]} ] `,
		`[]`, `[,]`, `[{"a":1},]`, `[{"a":1}]x`, `[1,"s",null]`, "[{\"a\":\"\xf5\"}]",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		trimmed := bytes.TrimLeft(body, " \t\r\n")
		if len(trimmed) == 0 || trimmed[0] != '[' {
			return // single objects: FuzzNormalizeMatchesDecoding
		}
		const max = 4
		items, single, err := eventbody.Split(eventbody.FormatJSON, body, max)
		if single {
			t.Fatal("an array is not the single-object form")
		}
		var elems []json.RawMessage
		if derr := json.Unmarshal(body, &elems); derr != nil {
			if err == nil {
				t.Fatalf("%q accepted; encoding/json: %v", body, derr)
			}
			return
		}
		switch {
		case len(elems) == 0:
			if !errors.Is(err, eventbody.ErrEmpty) {
				t.Fatalf("empty array: %v", err)
			}
			return
		case len(elems) > max:
			if !errors.Is(err, eventbody.ErrTooMany) {
				t.Fatalf("%d elements: %v", len(elems), err)
			}
			return
		case err != nil:
			// The scanner reads only objects as events; anything else
			// in a well-formed array is refused as a whole.
			for _, el := range elems {
				if bytes.TrimSpace(el)[0] != '{' {
					return
				}
			}
			t.Fatalf("%q refused: %v", body, err)
		}
		if len(items) != len(elems) {
			t.Fatalf("%d items for %d elements", len(items), len(elems))
		}
		for i, it := range items {
			if !bytes.Equal(bytes.TrimSpace(it.Raw), bytes.TrimSpace(elems[i])) {
				t.Fatalf("item %d %q, element %q", i, it.Raw, elems[i])
			}
		}
	})
}
