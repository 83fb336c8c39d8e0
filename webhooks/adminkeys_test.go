package webhooks_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
	"github.com/kilnhq/kiln/webhooks"
)

// Issue 21 item 4: without any key the admin API stays open for local use
// and the start log says so (Warn); with admin keys it does not; other keys
// without admin keys do not validate.
func TestOpenAdminAPIIsSaidAtStart(t *testing.T) {
	t.Parallel()
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	_, err := schemas.EnsureStream(t.Context(), js, schemas.StreamOptions{Replicas: 1, DuplicateWindow: 2 * time.Minute})
	require.NoError(t, err)
	db := testsupport.StartMongo(t).Database(t)
	for _, tc := range []struct {
		name  string
		keys  []string
		warns bool
	}{
		{"no keys", nil, true},
		{"admin keys", []string{"admin-1"}, false},
	} {
		logs := &testsupport.LogBuffer{}
		cfg := testConfig()
		cfg.AdminKeys = tc.keys
		require.NoError(t, cfg.Validate())
		_, err := webhooks.New(t.Context(), cfg, webhooks.Deps{JetStream: js, Mongo: db,
			Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		require.NoError(t, err)
		if tc.warns {
			require.Contains(t, logs.String(), "level=WARN msg=\"webhooks admin API is open", tc.name)
		} else {
			require.NotContains(t, logs.String(), "admin API is open", tc.name)
		}
	}
	cfg := testConfig()
	cfg.OtherKeys.Read = "read-1"
	require.ErrorContains(t, cfg.Validate(), "KILN_ADMIN_KEYS must be set when KILN_READ_KEYS is")
}
