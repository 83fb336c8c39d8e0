package gateway_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/gateway"
)

func TestReadKeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *gateway.Config) { c.ReadKeys = []string{"read-1", " read-2 "} })
	_, err := h.history.Apply(context.Background(), fixture(1, baseMs))
	require.NoError(t, err)

	tests := []struct {
		name    string
		path    string
		headers []string
		status  int
	}{
		{"no key", "/events", nil, 401},
		{"wrong bearer", "/events", []string{"Authorization", "Bearer nope"}, 401},
		{"wrong X-API-Key", "/events", []string{"X-API-Key", "nope"}, 401},
		{"wrong access_token", "/events?access_token=nope", nil, 401},
		{"bearer", "/events", []string{"Authorization", "Bearer read-1"}, 200},
		{"X-API-Key", "/events", []string{"X-API-Key", "read-2"}, 200},
		{"access_token", "/events?access_token=read-1", nil, 200},
		{"access_token with filters", "/events?type=a&access_token=read-2&limit=5", nil, 200},
		{"event without key", "/events/e000", nil, 401},
		{"missing event without key is 401, not 404", "/events/nope", nil, 401},
		{"event with key", "/events/e000", []string{"X-API-Key", "read-1"}, 200},
		{"metrics without key", "/metrics", nil, 401},
		{"metrics with access_token", "/metrics?access_token=read-2", nil, 200},
		{"openapi is public", "/openapi.json", nil, 200},
		{"docs are public", "/docs", nil, 200},
		{"healthz is public", "/healthz", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := get(t, h.url+tt.path, tt.headers...)
			if tt.status == 401 {
				requireProblem(t, r, 401)
				require.Equal(t, `Bearer realm="kiln"`, r.header.Get("WWW-Authenticate"))
				return
			}
			require.Equal(t, tt.status, r.status, "%s", r.body)
		})
	}
}
