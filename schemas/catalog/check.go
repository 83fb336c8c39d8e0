package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/kilnhq/kiln/schemas"
)

// CheckDocument reports whether doc can be version of eventType: at most
// MaxDocumentBytes of JSON, an object, with no "$id" other than the type's
// own URL, that compiles as draft 2020-12 beside the envelope and the latest
// version of every other type in c (nil: the embedded ones). It returns the
// document compacted, as it is stored.
func CheckDocument(ctx context.Context, c *Catalog, eventType string, doc []byte) ([]byte, error) {
	if len(doc) > MaxDocumentBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidSchema, len(doc), MaxDocumentBytes)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, doc); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrInvalidSchema, err)
	}
	if d := depth(compact.Bytes()); d > MaxDocumentDepth {
		return nil, fmt.Errorf("%w: nested %d levels deep, at most %d", ErrInvalidSchema, d, MaxDocumentDepth)
	}
	var top map[string]any
	if err := json.Unmarshal(compact.Bytes(), &top); err != nil {
		return nil, fmt.Errorf("%w: a schema is a JSON object: %v", ErrInvalidSchema, err)
	}
	if id, ok := top["$id"]; ok && id != schemas.SchemaURL(eventType) {
		return nil, fmt.Errorf("%w: $id must be absent or %q, got %v", ErrInvalidSchema, schemas.SchemaURL(eventType), id)
	}
	docs, err := schemas.Embedded()
	if err != nil {
		return nil, err
	}
	if c != nil {
		if docs, err = c.candidateDocs(ctx, eventType, compact.Bytes()); err != nil {
			return nil, err
		}
	}
	docs[eventType] = compact.Bytes()
	if _, err := schemas.Compile(docs); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	return compact.Bytes(), nil
}

// LatestDocuments is the latest version's document of every type.
func (c *Catalog) LatestDocuments(ctx context.Context) (map[string][]byte, error) {
	types, err := c.Types(ctx)
	if err != nil {
		return nil, err
	}
	docs := make(map[string][]byte, len(types))
	for t := range types {
		v, ok, err := c.Latest(ctx, t)
		if err != nil {
			return nil, err
		}
		if ok {
			docs[t] = v.Schema
		}
	}
	return docs, nil
}

// MaxDocumentDepth bounds how deeply a schema's objects and arrays nest.
const MaxDocumentDepth = 64

// depth is the deepest nesting of objects and arrays in valid JSON b.
func depth(b []byte) int {
	d, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			d++
			deepest = max(deepest, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return deepest
}
