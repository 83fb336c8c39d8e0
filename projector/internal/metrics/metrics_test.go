package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/projector/internal/metrics"
)

// TestEverySeriesOfAProjectionStartsAtZero: the alert rules' increase()
// over poison_total and store_errors_total needs the series before the
// first poison message or store error.
func TestEverySeriesOfAProjectionStartsAtZero(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	metrics.New(reg).For("history")
	for _, name := range []string{"events_applied_total", "batch_seconds", "redeliveries_total", "poison_total",
		"store_errors_total", "stalled"} {
		n, err := testutil.GatherAndCount(reg, "kiln_projector_"+name)
		require.NoError(t, err)
		require.Equal(t, 1, n, "kiln_projector_%s{projection=\"history\"}", name)
	}
}
