package serve_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/serve"
)

// Issue 21 item 4: kiln serve webhooks refuses to start with its admin API
// open in a deployment that sets other keys; with no key at all it starts.
func TestServeWebhooksNeedsAdminKeysWhenOtherKeysAreSet(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		refused bool
	}{
		{"no keys at all", map[string]string{}, false},
		{"ingest keys", map[string]string{"KILN_INGEST_KEYS": "i-1"}, true},
		{"read keys", map[string]string{"KILN_READ_KEYS": "r-1,r-2"}, true},
		{"token secrets", map[string]string{"KILN_TOKEN_SECRETS": "0123456789abcdef0123456789abcdef"}, true},
		{"empty list", map[string]string{"KILN_INGEST_KEYS": " , "}, false},
		{"admin keys too", map[string]string{"KILN_INGEST_KEYS": "i-1", "KILN_READ_KEYS": "r-1", "KILN_ADMIN_KEYS": "a-1"}, false},
		{"admin keys alone", map[string]string{"KILN_ADMIN_KEYS": "a-1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := serve.LoadWebhooksConfig(tc.env)
			if !tc.refused {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, "KILN_ADMIN_KEYS must be set")
		})
	}
}
