package schemas

// FastValid is the fast path's verdict on the JSON text b; read is false
// when b is not one well-formed value (ingest rejects it before validation).
func (r *Registry) FastValid(b []byte) (valid, read bool) {
	f, ok := ReadEvent(b)
	if !ok {
		return false, false
	}
	return r.fastValid(&f, nil, false), true
}

// SchemaErrors is the JSON Schema's verdict on a decoded event, without the
// fast path.
func (r *Registry) SchemaErrors(doc any) []FieldError { return r.validateSchema(doc) }

// ScansMetadata reports whether the fast path checks eventType's metadata
// on the JSON text.
func (r *Registry) ScansMetadata(eventType string) bool { return r.fastTypes[eventType].meta != nil }
