package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/kilnhq/kiln/schemas/jsonscan"
)

//go:embed json/*.json
var schemaFiles embed.FS

const (
	schemaBaseURL = "https://schemas.kiln.dev/events/"
	envelopeFile  = "envelope.json"
)

// Registry holds the compiled JSON Schemas: the envelope, and one schema per
// registered event type. It is safe for concurrent use.
type Registry struct {
	envelope *jsonschema.Schema
	byType   map[string]*jsonschema.Schema
	raw      map[string][]byte
	// docs holds the decoded schema documents by URL, to name fields.
	docs map[string]any
	// fastEnvelope is true when envelope.json is the schema the fast path
	// implements (envelopeSpec).
	fastEnvelope bool
	// fastTypes holds the registered types the fast path can check.
	fastTypes map[string]typeCheck
}

// typeCheck is what a type schema adds to the envelope, for the fast path.
type typeCheck struct {
	requireMetadata bool
	// metadata is the type schema's "properties.metadata", nil when none.
	metadata *jsonschema.Schema
	// meta is the same schema when the fast path checks it on the JSON
	// text (see metaspec.go), nil otherwise.
	meta *metaSpec
}

// NewRegistry compiles the embedded schemas. Call it once at start-up.
func NewRegistry() (*Registry, error) {
	docs, err := Embedded()
	if err != nil {
		return nil, err
	}
	return Compile(docs)
}

// Embedded is the schema documents compiled into Kiln, by event type (""
// is the envelope): the first version of each type in a new deployment.
func Embedded() (map[string][]byte, error) {
	docs := map[string][]byte{}
	err := fs.WalkDir(schemaFiles, "json", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := schemaFiles.ReadFile(p)
		if err != nil {
			return err
		}
		name := path.Base(p)
		if name == envelopeFile {
			docs[""] = b
		} else {
			docs[strings.TrimSuffix(name, ".json")] = b
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load schemas: %w", err)
	}
	return docs, nil
}

// SchemaURL is the URL a type's schema is known by ("" is the envelope):
// a relative "$ref" in a schema resolves against it.
func SchemaURL(eventType string) string {
	if eventType == "" {
		return schemaBaseURL + envelopeFile
	}
	return schemaBaseURL + eventType + ".json"
}

// Compile compiles schema documents by event type ("" is the envelope,
// which must be present). A "$ref" may name another of docs (relative to
// SchemaURL); nothing is ever fetched from the network.
func Compile(docs map[string][]byte) (*Registry, error) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	c.LoadURL = func(u string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("%w: %s", ErrRemoteRef, u)
	}
	if _, ok := docs[""]; !ok {
		return nil, fmt.Errorf("load schemas: %s is missing", envelopeFile)
	}
	for t, b := range docs {
		if err := c.AddResource(SchemaURL(t), bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("load schema %s: %w", nameOf(t), err)
		}
	}
	r := &Registry{byType: map[string]*jsonschema.Schema{}, raw: map[string][]byte{}, docs: map[string]any{}, fastTypes: map[string]typeCheck{}}
	for t, b := range docs {
		name := nameOf(t)
		var d any
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("load schema %s: %w", name, err)
		}
		r.docs[SchemaURL(t)] = d
		s, err := c.Compile(SchemaURL(t))
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", name, err)
		}
		if t == "" {
			r.envelope = s
			r.raw[""] = b
			r.fastEnvelope = implementsEnvelope(b)
			continue
		}
		r.byType[t] = s
		r.raw[t] = b
		if tc, ok, err := compileTypeCheck(c, name, b); err != nil {
			return nil, err
		} else if ok {
			r.fastTypes[t] = tc
		}
	}
	return r, nil
}

// ErrRemoteRef is a "$ref" to a document that is not one of Kiln's
// schemas: Kiln never fetches schemas from the network.
var ErrRemoteRef = errors.New("remote $ref refused: Kiln never fetches schemas")

// nameOf is a type's schema file name, as errors name it.
func nameOf(eventType string) string {
	if eventType == "" {
		return envelopeFile
	}
	return eventType + ".json"
}

// Types lists the event types that have a schema of their own, sorted.
func (r *Registry) Types() []string {
	types := make([]string, 0, len(r.byType))
	for t := range r.byType {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

// Schema returns the raw JSON Schema document for an event type, or the
// envelope schema for "". The second result is false for an unknown type.
func (r *Registry) Schema(eventType string) ([]byte, bool) {
	b, ok := r.raw[eventType]
	return b, ok
}

// compileTypeCheck prepares the fast path's check of a type schema; ok is
// false when the schema has a form the fast path does not handle.
func compileTypeCheck(c *jsonschema.Compiler, name string, raw []byte) (tc typeCheck, ok bool, err error) {
	requireMetadata, metadataSchema, ok := typeShape(name, raw)
	if !ok {
		return tc, false, nil
	}
	tc.requireMetadata = requireMetadata
	if metadataSchema {
		if tc.metadata, err = c.Compile(schemaBaseURL + name + "#/properties/metadata"); err != nil {
			return tc, false, fmt.Errorf("compile schema %s metadata: %w", name, err)
		}
		tc.meta = metaSpecOf(raw)
	}
	return tc, true, nil
}

// Validate checks a decoded JSON value (as produced by encoding/json with
// UseNumber) against the schema of its eventType, or the envelope schema when
// the type has none. It returns nil when the event is valid. The fast path
// decides valid events; the JSON Schema explains invalid ones.
func (r *Registry) Validate(doc any) []FieldError {
	if f, metadata, ok := fieldsOf(doc); ok && r.fastValid(&f, metadata, true) {
		return nil
	}
	return r.validateSchema(doc)
}

// ValidateFields is Validate for an event read with ScanEvent from the JSON
// text raw: valid events are decided on f alone (the metadata is decoded
// only for a type with a schema of its own); for invalid ones raw is
// decoded and checked by the JSON Schema, which names every failing field.
func (r *Registry) ValidateFields(f *EventFields, raw []byte) []FieldError {
	if r.fastValid(f, nil, false) {
		return nil
	}
	doc, ok := jsonscan.Decode(raw)
	if !ok {
		return []FieldError{{Field: "", Message: "is not well-formed JSON"}}
	}
	return r.validateSchema(doc)
}

// ValidateEnvelope checks an event read with ScanEvent against the
// envelope schema alone, whatever its type: what an event must pass to be
// accepted when its type's schema is not enforced.
func (r *Registry) ValidateEnvelope(f *EventFields, raw []byte) []FieldError {
	if r.fastEnvelope && envelopeValid(f) {
		return nil
	}
	doc, ok := jsonscan.Decode(raw)
	if !ok {
		return []FieldError{{Field: "", Message: "is not well-formed JSON"}}
	}
	if m, ok := doc.(map[string]any); ok {
		if n, ok := m["timestamp"].(json.Number); ok && !tameNumber(n) {
			return []FieldError{{Field: "timestamp", Message: untamedMessage}}
		}
	}
	err := r.envelope.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		return fieldErrors(ve, r.namesIn(doc))
	}
	return []FieldError{{Field: "", Message: err.Error()}}
}

// HasSchema reports whether eventType has a schema of its own.
func (r *Registry) HasSchema(eventType string) bool {
	_, ok := r.byType[eventType]
	return ok
}

// fastValid reports whether the fast path finds the event valid; false
// means invalid, or a schema the fast path does not handle. metadata is
// the decoded metadata when decoded is true; otherwise f.Metadata is
// decoded if the type's schema must see it.
func (r *Registry) fastValid(f *EventFields, metadata any, decoded bool) bool {
	if !r.fastEnvelope || !envelopeValid(f) {
		return false
	}
	if _, registered := r.byType[f.EventType]; !registered {
		return true
	}
	tc, ok := r.fastTypes[f.EventType]
	switch {
	case !ok:
		return false
	case f.MetadataKind == jsonscan.None:
		return !tc.requireMetadata
	case tc.metadata == nil:
		return true
	}
	if !decoded {
		if tc.meta != nil {
			return numbersTame(f.Metadata) && tc.meta.valid(f.Metadata)
		}
		if metadata, ok = jsonscan.Decode(f.Metadata); !ok {
			return false
		}
	}
	return tameNumbers(metadata) && tc.metadata.Validate(metadata) == nil
}

// validateSchema checks doc with the JSON Schema of its type, after
// refusing the numbers jsonschema cannot compare safely (see numbers.go).
func (r *Registry) validateSchema(doc any) []FieldError {
	if errs := r.untamed(doc); errs != nil {
		return errs
	}
	s := r.envelope
	if m, ok := doc.(map[string]any); ok {
		if t, ok := m["eventType"].(string); ok {
			if ts, ok := r.byType[t]; ok {
				s = ts
			}
		}
	}
	err := s.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		return fieldErrors(ve, r.namesIn(doc))
	}
	return []FieldError{{Field: "", Message: err.Error()}}
}
