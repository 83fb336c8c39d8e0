// Package eventbody turns a POST /events body into validated events: it
// splits single, array and NDJSON bodies into items, checks each against the
// schema registry and normalises the accepted ones into stored envelopes.
package eventbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/jsonscan"
)

// Format is the shape of a request body.
type Format int

// Body formats.
const (
	FormatJSON   Format = iota // one object (compat) or an array of objects
	FormatNDJSON               // one object per line
)

var (
	// ErrUnsupportedMediaType is returned for a content type Kiln does not read.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrMalformed is returned for a body that is not well-formed JSON.
	ErrMalformed = errors.New("malformed JSON")
	// ErrEmpty is returned for a body with no events.
	ErrEmpty = errors.New("no events in body")
	// ErrTooMany is returned when a batch exceeds the configured maximum.
	ErrTooMany = errors.New("too many events in one request")
)

// FormatOf maps a Content-Type header to a body format.
func FormatOf(contentType string) (Format, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, fmt.Errorf("%w: the Content-Type header is not a media type; send application/json or application/x-ndjson", ErrUnsupportedMediaType)
	}
	// JSON is UTF-8 (RFC 8259): a body in another charset is refused, not
	// read as UTF-8 and its text mangled.
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return 0, fmt.Errorf("%w: charset %q; Kiln reads JSON as UTF-8 only (send charset=utf-8 or none)", ErrUnsupportedMediaType, cs)
	}
	switch {
	// text/plain is read as JSON too: it is what navigator.sendBeacon and
	// fetch send for a string body, and a CORS-safelisted type, so a page
	// on another origin can post without a preflight (a beacon cannot send
	// one at all).
	case mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "text/plain":
		return FormatJSON, nil
	case mt == "application/x-ndjson" || mt == "application/ndjson" || mt == "application/jsonl":
		return FormatNDJSON, nil
	}
	return 0, fmt.Errorf("%w: %q; send application/json (or text/plain holding JSON) or application/x-ndjson", ErrUnsupportedMediaType, mt)
}

// Item is one element of a body: its JSON text with the envelope members
// read from it, or the reason it could not be read (NDJSON lines fail one
// by one).
type Item struct {
	// Raw is the item's JSON text (with Err, the text that is not JSON);
	// it aliases the request body.
	Raw []byte
	// Fields are the envelope members of Raw.
	Fields schemas.EventFields
	Err    error
}

// Split reads a body into items in one pass, without decoding them: each
// item is checked for well-formedness (as encoding/json would) and its
// envelope members are read. Single reports whether the body was one JSON
// object (the compat form, answered with a single result). A JSON body that
// is not well-formed fails as a whole; an NDJSON line that is not fails
// alone.
func Split(format Format, body []byte, maxItems int) (items []Item, single bool, err error) {
	if format == FormatNDJSON {
		items, err := splitNDJSON(body, maxItems)
		return items, false, err
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, false, ErrEmpty
	}
	if trimmed[0] != '[' {
		f, ok := schemas.ReadEvent(trimmed)
		if !ok {
			return nil, false, malformedText(trimmed)
		}
		return []Item{{Raw: trimmed, Fields: f}}, true, nil
	}
	return splitArray(trimmed, maxItems)
}

// splitArray reads a JSON array body (b[0] == '[').
func splitArray(b []byte, maxItems int) (items []Item, single bool, err error) {
	i := jsonscan.SkipSpace(b, 1)
	if i < len(b) && b[i] == ']' {
		if jsonscan.SkipSpace(b, i+1) != len(b) {
			return nil, false, malformedText(b)
		}
		return nil, false, ErrEmpty
	}
	// Most bodies are batches of similar events: guess the count from the
	// first one to allocate once.
	n := 0
	for {
		f, end, ok := schemas.ScanEvent(b, i, 1)
		if !ok {
			return nil, false, malformedText(b)
		}
		if items == nil {
			items = make([]Item, 0, min(maxItems, len(b)/max(end-i, 1)+1))
		}
		if n++; n <= maxItems {
			items = append(items, Item{Raw: b[i:end], Fields: f})
		}
		if i = jsonscan.SkipSpace(b, end); i >= len(b) {
			return nil, false, malformedText(b)
		}
		if b[i] == ']' {
			break
		}
		if b[i] != ',' {
			return nil, false, malformedText(b)
		}
		i = jsonscan.SkipSpace(b, i+1)
	}
	if jsonscan.SkipSpace(b, i+1) != len(b) {
		return nil, false, malformedText(b)
	}
	if n > maxItems {
		return nil, false, fmt.Errorf("%w: %d events, the limit is %d", ErrTooMany, n, maxItems)
	}
	return items, false, nil
}

func splitNDJSON(body []byte, maxItems int) ([]Item, error) {
	var items []Item
	for line := range bytes.Lines(body) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if len(items) == maxItems {
			return nil, fmt.Errorf("%w: more than %d lines, the limit is %d", ErrTooMany, maxItems, maxItems)
		}
		if items == nil {
			items = make([]Item, 0, min(maxItems, len(body)/len(line)+1))
		}
		f, ok := schemas.ReadEvent(line)
		if !ok {
			items = append(items, Item{Raw: line, Err: malformedText(line)})
			continue
		}
		items = append(items, Item{Raw: line, Fields: f})
	}
	if len(items) == 0 {
		return nil, ErrEmpty
	}
	return items, nil
}

// malformedText explains why b, which the scanner found not well-formed,
// is malformed, in encoding/json's words.
func malformedText(b []byte) error {
	if err := decodeOne(b); err != nil {
		return err
	}
	return fmt.Errorf("%w: not well-formed", ErrMalformed) // unreachable while the scanner agrees with encoding/json
}

// decodeOne decodes exactly one JSON value and returns why it is malformed,
// nil if it is not.
func decodeOne(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	var v any
	if err := d.Decode(&v); err != nil {
		return malformed(err)
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("%w: unexpected data after the JSON value", ErrMalformed)
	}
	return nil
}

func malformed(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: %v (at byte %d)", ErrMalformed, se, se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: unexpected end of input", ErrMalformed)
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}
