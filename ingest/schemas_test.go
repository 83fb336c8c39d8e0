package ingest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/testsupport"
)

// runIngest serves and runs an ingest service on ns (it follows the
// schema registry) until the test ends, and returns its URL.
func runIngest(t *testing.T, ns *testsupport.NATS) string {
	t.Helper()
	return startHarness(t, ns, nil, true).url
}

// The registry's staleness is on the admin /metrics: 0 once ingest
// follows it, 1 when NATS is gone.
func TestSchemaRegistryStaleMetric(t *testing.T) {
	ns := testsupport.StartNATS(t)
	reg := startHarness(t, ns, nil, true).reg
	stale := func() float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "kiln_ingest_schema_registry_stale" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("kiln_ingest_schema_registry_stale is not exported")
		return -1
	}
	require.Eventually(t, func() bool { return stale() == 0 }, 2*time.Minute, 10*time.Millisecond)
	ns.Shutdown()
	require.Eventually(t, func() bool { return stale() == 1 }, 2*time.Minute, 10*time.Millisecond)
}

// A type registered at runtime is enforced by every ingest instance
// following the registry, without a restart.
func TestRuntimeSchemaIsEnforcedByEveryInstance(t *testing.T) {
	ns := testsupport.StartNATS(t)
	urls := []string{runIngest(t, ns), runIngest(t, ns)}
	post := func(url, body string) int {
		resp, err := http.Post(url+"/events", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		return resp.StatusCode
	}
	noPlan := `{"eventType":"signup.completed","userId":"u1","timestamp":1700000000000,"metadata":{}}`
	for _, u := range urls {
		require.Equal(t, http.StatusAccepted, post(u, noPlan), "no schema yet: the envelope alone")
	}

	cat, err := catalog.Open(context.Background(), ns.JetStream(t), schemas.StreamOptions{})
	require.NoError(t, err)
	_, _, err = cat.Push(context.Background(), "signup.completed", []byte(`{"allOf":[{"$ref":"envelope.json"}],
		"required":["metadata"],"properties":{"metadata":{"type":"object","required":["plan"]}}}`), "", false)
	require.NoError(t, err)
	for _, u := range urls {
		require.Eventually(t, func() bool { return post(u, noPlan) == http.StatusBadRequest }, 2*time.Minute, 20*time.Millisecond,
			"%s never enforced the new version", u)
		require.Equal(t, http.StatusAccepted, post(u, `{"eventType":"signup.completed","userId":"u1","timestamp":1700000000000,"metadata":{"plan":"pro"}}`))
	}
}
