package schemas

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// jsonschema compares numbers as big.Rat parsed from their literal: an
// exponent beyond ±1e6 makes that parse fail and the validator panic, and
// long literals or large exponents cost it up to ~100 ms a number. The
// registry therefore refuses, before jsonschema sees them, numbers it would
// compare that are longer than maxNumberLen or have an exponent beyond
// ±maxNumberExp: the timestamp, and every number in the metadata of a type
// whose schema checks metadata. The fast path applies the same rule.
const (
	maxNumberLen = 100
	maxNumberExp = 1000
	// untamedMessage explains the refusal.
	untamedMessage = "is a number too long or too far out of range"
)

// tameNumber reports whether the well-formed number literal lit is short
// enough and has an exponent small enough for jsonschema to compare.
func tameNumber[T ~string | ~[]byte](lit T) bool {
	if len(lit) > maxNumberLen {
		return false
	}
	for i := 0; i < len(lit); i++ {
		if lit[i] != 'e' && lit[i] != 'E' {
			continue
		}
		exp := 0
		for j := i + 1; j < len(lit); j++ {
			if c := lit[j]; c >= '0' && c <= '9' {
				if exp = exp*10 + int(c-'0'); exp > maxNumberExp {
					return false
				}
			}
		}
		return true
	}
	return true
}

// tameNumbers reports whether every number in the decoded value v is tame.
func tameNumbers(v any) bool {
	switch v := v.(type) {
	case json.Number:
		return tameNumber(v)
	case map[string]any:
		for _, e := range v {
			if !tameNumbers(e) {
				return false
			}
		}
	case []any:
		return !slices.ContainsFunc(v, func(e any) bool { return !tameNumbers(e) })
	}
	return true
}

// untamed returns the field errors for the numbers of doc that jsonschema
// must not be given, nil when there are none.
func (r *Registry) untamed(doc any) []FieldError {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil
	}
	var errs []FieldError
	if n, ok := m["timestamp"].(json.Number); ok && !tameNumber(n) {
		errs = append(errs, FieldError{Field: "timestamp", Message: untamedMessage})
	}
	t, _ := m["eventType"].(string)
	if md, ok := m["metadata"]; ok && r.checksMetadata(t) {
		errs = append(errs, untamedIn(md, "metadata")...)
	}
	return errs
}

// untamedIn lists the untamed numbers in v, a value at field path.
func untamedIn(v any, path string) []FieldError {
	var errs []FieldError
	switch v := v.(type) {
	case json.Number:
		if !tameNumber(v) {
			errs = append(errs, FieldError{Field: path, Message: untamedMessage})
		}
	case map[string]any:
		for k, e := range v {
			errs = append(errs, untamedIn(e, joinField(path, k))...)
		}
		slices.SortFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
	case []any:
		for i, e := range v {
			errs = append(errs, untamedIn(e, joinField(path, strconv.Itoa(i)))...)
		}
	}
	return errs
}

// checksMetadata reports whether the schema of eventType may compare the
// numbers in its metadata: a registered type with a metadata schema, or
// one whose shape the fast path does not read.
func (r *Registry) checksMetadata(eventType string) bool {
	if _, ok := r.byType[eventType]; !ok {
		return false
	}
	tc, ok := r.fastTypes[eventType]
	return !ok || tc.metadata != nil
}
