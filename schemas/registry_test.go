package schemas_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
)

func decode(t *testing.T, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	require.NoError(t, d.Decode(&v))
	return v
}

func TestRegistryValidate(t *testing.T) {
	reg, err := schemas.NewRegistry()
	require.NoError(t, err)
	require.Equal(t, []string{"chat.message", "order.canceled", "order.chat", "order.created", "page_view", "payment.failed"}, reg.Types())

	order := `"metadata":{"id":"o1","status":"new","amount":12.5,"currency":"EUR","customerEmail":"a@b.co","createdAt":"2026-01-01T00:00:00Z"}`
	tests := []struct {
		name string
		doc  string
		want []schemas.FieldError
	}{
		{"minimal", `{"eventType":"page_view","userId":"u1","timestamp":1700000000}`, nil},
		{"unknown type uses envelope", `{"eventType":"signup","userId":"u1","timestamp":1700000000000,"metadata":{"x":1}}`, nil},
		{"registered type", `{"eventType":"order.created","userId":"u1","timestamp":1,` + order + `}`, nil},
		{"missing fields", `{"metadata":{}}`, []schemas.FieldError{
			{Field: "eventType", Message: "is required"},
			{Field: "timestamp", Message: "is required"},
			{Field: "userId", Message: "is required"},
		}},
		{"wrong types", `{"eventType":"a","userId":7,"timestamp":"now"}`, []schemas.FieldError{
			{Field: "timestamp", Message: "expected number, but got string"},
			{Field: "userId", Message: "expected string, but got number"},
		}},
		{"bad event type", `{"eventType":"a..b","userId":"u","timestamp":1}`, []schemas.FieldError{
			{Field: "eventType", Message: "must be dot-separated tokens of letters, digits, '_' or '-' (e.g. order.created)"},
		}},
		{"non-positive timestamp", `{"eventType":"a","userId":"u","timestamp":0}`, []schemas.FieldError{
			{Field: "timestamp", Message: "must be > 0 but found 0"},
		}},
		{"unknown field", `{"eventType":"a","userId":"u","timestamp":1,"seq":4}`, []schemas.FieldError{
			{Field: "seq", Message: "is not an allowed field"},
		}},
		{"type schema metadata", `{"eventType":"payment.failed","userId":"u","timestamp":1,"metadata":{"amount":-1}}`, []schemas.FieldError{
			{Field: "metadata.amount", Message: "must be >= 0 but found -1"},
			{Field: "metadata.currency", Message: "is required"},
		}},
		{"type schema requires metadata", `{"eventType":"order.canceled","userId":"u","timestamp":1}`, []schemas.FieldError{
			{Field: "metadata", Message: "is required"},
		}},
		{"not an object", `[1]`, []schemas.FieldError{{Field: "", Message: "expected object, but got array"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, reg.Validate(decode(t, tt.doc)))
		})
	}
}

func TestTimestampMillis(t *testing.T) {
	tests := []struct {
		in   float64
		want int64
	}{
		{1700000000, 1700000000000},
		{1700000000.5, 1700000000500},
		{1700000000000, 1700000000000},
		{9999999999, 9999999999000},
		{1e10, 1e10},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, schemas.TimestampMillis(tt.in), "in=%v", tt.in)
	}
}

func TestStreamOptionsValidate(t *testing.T) {
	require.NoError(t, schemas.StreamOptions{}.Validate())
	require.Error(t, schemas.StreamOptions{Replicas: 7}.Validate())
	require.Error(t, schemas.StreamOptions{MaxAge: 1, DuplicateWindow: 2}.Validate())
	cfg := schemas.StreamConfig(schemas.StreamOptions{})
	require.Equal(t, []string{"events.>"}, cfg.Subjects)
	require.Equal(t, schemas.DefaultDuplicateWindow, cfg.Duplicates)
}
