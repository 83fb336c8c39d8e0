package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kilnhq/kiln/schemas/catalog"
)

// Component names of the typed events in the served OpenAPI document.
const (
	// typedPrefix prefixes a registered type's component: Event.order.created
	// (event types are dot-separated [A-Za-z0-9_-] tokens, which component
	// names allow as they are).
	typedPrefix = "Event."
	// anyEventInput is the request body's item: in the embedded document
	// the envelope alone, in the served one the registered types keyed by
	// eventType.
	anyEventInput = "AnyEventInput"
	// otherEventInput is an event of a type with no schema of its own.
	otherEventInput = "OtherEventInput"
	// envelopeComponent is the envelope (schemas/json/envelope.json).
	envelopeComponent = "EventInput"
	// schemaBase is the $id prefix of the registered documents.
	schemaBase = "https://schemas.kiln.dev/events/"
	// componentsRef is the pointer to the document's schemas.
	componentsRef = "#/components/schemas/"
)

// typedTimeout bounds reading the registry for one GET /openapi.json.
const typedTimeout = 5 * time.Second

// Typed adds the schema registry's latest versions to the OpenAPI document,
// as it is when the document is asked for: versions are immutable, so a
// document is rebuilt only when a type or a version was added.
type Typed struct {
	Catalog *catalog.Opener
	// AcceptUntyped: events of types with no schema are accepted
	// (SCHEMAS_UNKNOWN_TYPES=accept), so the body also allows them.
	AcceptUntyped bool

	mu   sync.Mutex
	key  string // the types and version counts the body was built from
	body []byte
}

// document is the OpenAPI document with the registered types, or the
// embedded one (and the error) when the registry does not answer.
func (t *Typed) document(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, typedTimeout)
	defer cancel()
	cat, err := t.Catalog.Get(ctx)
	if err != nil {
		return openAPI, err
	}
	types, err := cat.Types(ctx)
	if err != nil {
		return openAPI, err
	}
	names := slices.Sorted(maps.Keys(types))
	var key strings.Builder
	for _, n := range names {
		fmt.Fprintf(&key, "%s:%d,", n, types[n])
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.body != nil && t.key == key.String() {
		return t.body, nil
	}
	versions := make([]catalog.Version, 0, len(names))
	for _, n := range names {
		v, ok, err := cat.Latest(ctx, n)
		if err != nil {
			return openAPI, err
		}
		if ok {
			versions = append(versions, v)
		}
	}
	body, err := withTypes(openAPI, versions, t.AcceptUntyped)
	if err != nil {
		return openAPI, err
	}
	t.key, t.body = key.String(), body
	return body, nil
}

// withTypes is doc with one component per version (Event.<type>: the
// version's schema, its references made local to the document, and the
// eventType it is for) and the request body's AnyEventInput as a oneOf of
// them keyed by the eventType discriminator.
func withTypes(doc []byte, versions []catalog.Version, acceptUntyped bool) ([]byte, error) {
	var d map[string]any
	if err := decodeNumbers(doc, &d); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	comps, _ := d["components"].(map[string]any)
	schemasMap, _ := comps["schemas"].(map[string]any)
	if schemasMap == nil {
		return nil, fmt.Errorf("openapi.json has no components.schemas")
	}
	registered := map[string]bool{}
	for _, v := range versions {
		registered[v.Type] = true
	}
	mapping := map[string]any{}
	var oneOf, typeNames []any
	for _, v := range versions {
		var s any
		if err := decodeNumbers(v.Schema, &s); err != nil {
			return nil, fmt.Errorf("schema %s version %d: %w", v.Type, v.Version, err)
		}
		if m, ok := s.(map[string]any); ok {
			// References are rewritten to the document: the $id would
			// resolve them against schemas.kiln.dev instead.
			delete(m, "$id")
			delete(m, "$schema")
		}
		name := typedPrefix + v.Type
		s = localRefs(s, componentsRef+name+"/allOf/0", registered)
		schemasMap[name] = map[string]any{
			"title": v.Type,
			"description": fmt.Sprintf("An event of type %s: version %d of its registered JSON Schema "+
				"(GET /schemas/%s/versions/%d), and eventType %s.", v.Type, v.Version, v.Type, v.Version, v.Type),
			"allOf":                  []any{s},
			"required":               []any{"eventType"},
			"properties":             map[string]any{"eventType": map[string]any{"const": v.Type}},
			"x-kiln-schema-version":  v.Version,
			"x-kiln-schema-registry": "/schemas/" + v.Type,
		}
		ref := componentsRef + name
		mapping[v.Type] = ref
		oneOf = append(oneOf, map[string]any{"$ref": ref})
		typeNames = append(typeNames, v.Type)
	}
	if len(versions) == 0 {
		return doc, nil // the embedded document's envelope alone
	}
	desc := "An event, validated against its type's latest registered schema (`Event.<type>`, chosen by `eventType`)"
	if acceptUntyped {
		schemasMap[otherEventInput] = map[string]any{
			"description": "An event of a type with no registered schema: checked against the envelope alone (SCHEMAS_UNKNOWN_TYPES=accept).",
			"allOf":       []any{map[string]any{"$ref": componentsRef + envelopeComponent}},
			"properties":  map[string]any{"eventType": map[string]any{"not": map[string]any{"enum": typeNames}}},
		}
		oneOf = append(oneOf, map[string]any{"$ref": componentsRef + otherEventInput})
		desc += "; an event of any other type is checked against the envelope alone (`OtherEventInput`)."
	} else {
		desc += "; an event of any other type is refused (SCHEMAS_UNKNOWN_TYPES=reject)."
	}
	schemasMap[anyEventInput] = map[string]any{
		"description":   desc + " Built from the schema registry when this document is served.",
		"oneOf":         oneOf,
		"discriminator": map[string]any{"propertyName": "eventType", "mapping": mapping},
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func decodeNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// localRefs rewrites the "$ref"s of a registered schema to pointers into
// the document: its own fragments ("#/$defs/x") under base, the envelope
// ("envelope.json") to EventInput, another type ("<type>.json#/x") to that
// type's schema. A reference it cannot place is left as it is.
func localRefs(v any, base string, registered map[string]bool) any {
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			if s, ok := child.(string); ok && k == "$ref" {
				x[k] = localRef(s, base, registered)
				continue
			}
			x[k] = localRefs(child, base, registered)
		}
	case []any:
		for i, child := range x {
			x[i] = localRefs(child, base, registered)
		}
	}
	return v
}

func localRef(ref, base string, registered map[string]bool) string {
	file, frag, _ := strings.Cut(strings.TrimPrefix(ref, schemaBase), "#")
	if frag != "" && !strings.HasPrefix(frag, "/") {
		return ref // an $anchor: no pointer to rewrite it to
	}
	switch {
	case file == "":
		return base + frag
	case file == "envelope.json":
		return componentsRef + envelopeComponent + frag
	case strings.HasSuffix(file, ".json") && registered[strings.TrimSuffix(file, ".json")]:
		return componentsRef + typedPrefix + strings.TrimSuffix(file, ".json") + "/allOf/0" + frag
	}
	return ref
}
