package serve_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/serve"
	"github.com/kilnhq/kiln/app/standalone"
	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest"
)

// TestEveryPublicListenerReadsAllowedOrigins: kiln run and every kiln
// serve role with a public listener read the one setting
// KILN_ALLOWED_ORIGINS ("*" by default) and refuse a bad entry, naming
// the variable.
func TestEveryPublicListenerReadsAllowedOrigins(t *testing.T) {
	t.Parallel()
	loaders := map[string]func(map[string]string) (httpserver.Origins, error){
		"ingest": func(env map[string]string) (httpserver.Origins, error) {
			c, err := ingest.LoadConfig(env)
			return c.AllowedOrigins, err
		},
		"gateway": func(env map[string]string) (httpserver.Origins, error) {
			c, err := gateway.LoadConfig(env)
			return c.AllowedOrigins, err
		},
		"webhooks": func(env map[string]string) (httpserver.Origins, error) {
			c, err := serve.LoadWebhooksConfig(env)
			return c.AllowedOrigins, err
		},
		"realtime": func(env map[string]string) (httpserver.Origins, error) {
			c, err := serve.LoadRealtimeConfig(env)
			return c.AllowedOrigins, err
		},
		"standalone": func(env map[string]string) (httpserver.Origins, error) {
			c, err := standalone.LoadConfig(env)
			return c.AllowedOrigins, err
		},
	}
	for name, load := range loaders {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o, err := load(map[string]string{})
			require.NoError(t, err)
			require.True(t, o.Any(), "the default is *")

			o, err = load(map[string]string{"KILN_ALLOWED_ORIGINS": "https://*.example.com,http://localhost:5173"})
			require.NoError(t, err)
			require.False(t, o.Any())
			require.True(t, o.Allows("https://a.example.com"))
			require.True(t, o.Allows("http://localhost:5173"))
			require.False(t, o.Allows("https://example.com"))

			_, err = load(map[string]string{"KILN_ALLOWED_ORIGINS": "app.example.com"})
			require.ErrorContains(t, err, "KILN_ALLOWED_ORIGINS")
		})
	}
}
