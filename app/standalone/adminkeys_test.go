package standalone_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone"
)

// Issue 21 item 4: kiln run (the admin API on the public port) refuses to
// start with KILN_INGEST_KEYS or KILN_READ_KEYS set and KILN_ADMIN_KEYS
// empty; make run's defaults (no key at all) start.
func TestStandaloneNeedsAdminKeysWhenOtherKeysAreSet(t *testing.T) {
	t.Parallel()
	_, err := standalone.LoadConfig(map[string]string{})
	require.NoError(t, err)
	_, err = standalone.LoadConfig(map[string]string{"KILN_INGEST_KEYS": "i-1", "KILN_READ_KEYS": "r-1"})
	require.ErrorContains(t, err, "KILN_ADMIN_KEYS must be set when KILN_INGEST_KEYS, KILN_READ_KEYS is")
	_, err = standalone.LoadConfig(map[string]string{"KILN_INGEST_KEYS": "i-1", "KILN_READ_KEYS": "r-1", "KILN_ADMIN_KEYS": "a-1"})
	require.NoError(t, err)
	// Without the webhooks service there is no admin API to guard.
	_, err = standalone.LoadConfig(map[string]string{"KILN_READ_KEYS": "r-1", "KILN_SERVICES": "ingest,projector,gateway"})
	require.NoError(t, err)
}
