package schemas

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
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
}

// NewRegistry compiles the embedded schemas. Call it once at start-up.
func NewRegistry() (*Registry, error) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	raw := map[string][]byte{}
	err := fs.WalkDir(schemaFiles, "json", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := schemaFiles.ReadFile(p)
		if err != nil {
			return err
		}
		name := path.Base(p)
		raw[name] = b
		return c.AddResource(schemaBaseURL+name, bytes.NewReader(b))
	})
	if err != nil {
		return nil, fmt.Errorf("load schemas: %w", err)
	}
	r := &Registry{byType: map[string]*jsonschema.Schema{}, raw: map[string][]byte{}}
	for name, b := range raw {
		s, err := c.Compile(schemaBaseURL + name)
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", name, err)
		}
		if name == envelopeFile {
			r.envelope = s
			r.raw[""] = b
			continue
		}
		eventType := strings.TrimSuffix(name, ".json")
		r.byType[eventType] = s
		r.raw[eventType] = b
	}
	if r.envelope == nil {
		return nil, fmt.Errorf("load schemas: %s is missing", envelopeFile)
	}
	return r, nil
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

// Validate checks a decoded JSON value (as produced by encoding/json with
// UseNumber) against the schema of its eventType, or the envelope schema when
// the type has none. It returns nil when the event is valid.
func (r *Registry) Validate(doc any) []FieldError {
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
		return FieldErrors(ve)
	}
	return []FieldError{{Field: "", Message: err.Error()}}
}
