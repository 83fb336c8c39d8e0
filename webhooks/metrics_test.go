package webhooks

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/testsupport"
	"github.com/kilnhq/kiln/webhooks/endpoint"
)

// TestEndpointsMetrics: the endpoints' health is counted by state from the
// store, and the oldest current failure's age is exported.
func TestEndpointsMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := endpoint.NewStore(testsupport.StartMongo(t).Database(t))
	create := func() string {
		url := "https://example.com/hook"
		ep, _, err := store.Create(ctx, endpoint.Input{URL: &url})
		require.NoError(t, err)
		return ep.ID
	}
	now := time.UnixMilli(1_800_000_000_000)
	create()
	require.NoError(t, store.SetFailingSince(ctx, create(), now.Add(-90*time.Second).UnixMilli()))
	require.NoError(t, store.SetFailingSince(ctx, create(), now.Add(-10*time.Second).UnixMilli()))
	require.NoError(t, store.Disable(ctx, create(), "failing too long"))

	c := newEndpointsCollector(endpoint.NewCache(store, 0))
	c.now = func() time.Time { return now }
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	want := `# HELP kiln_webhooks_endpoints Webhook endpoints by state: healthy, failing (deliveries failing, retried until WEBHOOKS_DISABLE_AFTER), disabled.
# TYPE kiln_webhooks_endpoints gauge
kiln_webhooks_endpoints{state="disabled"} 1
kiln_webhooks_endpoints{state="failing"} 2
kiln_webhooks_endpoints{state="healthy"} 1
# HELP kiln_webhooks_oldest_failure_seconds How long the longest current run of failed deliveries to an enabled endpoint has lasted (0 when none fails).
# TYPE kiln_webhooks_oldest_failure_seconds gauge
kiln_webhooks_oldest_failure_seconds 90
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want)))
}
