package ingest_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/ingest"
)

// Issue 21 item 9: with auth off, a new X-API-Key per request must not
// escape the limit (nor add an entry per value).
func TestRateLimitKeysOnTheClientUnlessTheKeyIsConfigured(t *testing.T) {
	t.Parallel()
	body := `{"eventType":"rl","userId":"u","timestamp":1}`
	for _, tc := range []struct {
		name string
		keys []string
	}{
		{"auth off", nil},
		{"auth on", []string{"good-key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *ingest.Config) { c.RateLimit = 2; c.APIKeys = tc.keys })
			// Up to 200 requests, each with a key never seen before: without
			// keys, some must be limited however slow the machine is.
			limited := 0
			for i := 0; i < 200 && limited == 0; i++ {
				r := h.post(t, jsonType, body, "X-API-Key", fmt.Sprintf("made-up-%d", i))
				if r.status == 429 {
					limited++
				}
			}
			if tc.keys == nil {
				require.Positive(t, limited, "made-up keys share the client's limit")
				return
			}
			// With auth on the made-up keys are 401 before the limiter; a
			// configured key has its own budget, not the client address's.
			require.Zero(t, limited)
			require.Equal(t, 202, h.post(t, jsonType, body, "X-API-Key", "good-key").status)
		})
	}
}
