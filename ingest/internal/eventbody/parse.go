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
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, fmt.Errorf("%w: %q; send application/json or application/x-ndjson", ErrUnsupportedMediaType, contentType)
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return FormatJSON, nil
	case mt == "application/x-ndjson" || mt == "application/ndjson" || mt == "application/jsonl":
		return FormatNDJSON, nil
	}
	return 0, fmt.Errorf("%w: %q; send application/json or application/x-ndjson", ErrUnsupportedMediaType, mt)
}

// Item is one element of a body: a decoded JSON value, or the reason it
// could not be decoded (NDJSON lines fail one by one).
type Item struct {
	Value any
	Err   error
}

// Split decodes a body into items. Single reports whether the body was one
// JSON object (the compat form, answered with a single result). A JSON body
// that is not well-formed fails as a whole; an NDJSON line that is not fails
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
		v, err := decodeOne(trimmed)
		if err != nil {
			return nil, false, err
		}
		return []Item{{Value: v}}, true, nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(trimmed, &raws); err != nil {
		return nil, false, malformed(err)
	}
	if len(raws) == 0 {
		return nil, false, ErrEmpty
	}
	if len(raws) > maxItems {
		return nil, false, fmt.Errorf("%w: %d events, the limit is %d", ErrTooMany, len(raws), maxItems)
	}
	items = make([]Item, len(raws))
	for i, raw := range raws {
		items[i].Value, items[i].Err = decodeOne(raw)
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
		v, err := decodeOne(line)
		items = append(items, Item{Value: v, Err: err})
	}
	if len(items) == 0 {
		return nil, ErrEmpty
	}
	return items, nil
}

// decodeOne decodes exactly one JSON value, keeping numbers exact.
func decodeOne(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, malformed(err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: unexpected data after the JSON value", ErrMalformed)
	}
	return v, nil
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
