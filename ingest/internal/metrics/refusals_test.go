package metrics

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
)

// Refusals count field errors by type and field, and events by type, once
// each, with the label values capped whatever is sent.
func TestRefusalsCountByTypeAndFieldWithCaps(t *testing.T) {
	m := NewIngest(prometheus.NewRegistry())
	r := m.Refusals
	two := []schemas.FieldError{{Field: "metadata.amount"}, {Field: "metadata.currency"}}
	r.Add("order.created", "rejected", two)
	r.Add("order.created", "quarantined", two[:1])
	r.Add("bad type!", "rejected", []schemas.FieldError{{Field: "eventType"}})

	require.InDelta(t, 1, testutil.ToFloat64(r.events.WithLabelValues("order.created", "rejected")), 0, "one event, two fields")
	require.InDelta(t, 1, testutil.ToFloat64(r.events.WithLabelValues("order.created", "quarantined")), 0)
	require.InDelta(t, 1, testutil.ToFloat64(r.vec.WithLabelValues("order.created", "metadata.currency", "rejected")), 0)
	require.InDelta(t, 1, testutil.ToFloat64(r.events.WithLabelValues(Other, "rejected")), 0, "an invalid type is not a label value")

	for i := range MaxRefusalTypes + 10 {
		r.Add(fmt.Sprintf("t%d", i), "rejected", []schemas.FieldError{{Field: "f"}})
	}
	for i := range MaxRefusalFields + 10 {
		r.Add("order.created", "rejected", []schemas.FieldError{{Field: fmt.Sprintf("metadata.f%d", i)}})
	}
	types := map[string]bool{}
	fields := 0
	for _, mf := range gather(t, m) {
		for _, metric := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range metric.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if mf.GetName() == "kiln_ingest_schema_refused_events_total" {
				types[labels["type"]] = true
			}
			if mf.GetName() == "kiln_ingest_schema_refusals_total" && labels["type"] == "order.created" && labels["outcome"] == "rejected" {
				fields++
			}
		}
	}
	require.LessOrEqual(t, len(types), MaxRefusalTypes+1, "at most the cap and other")
	require.True(t, types[Other])
	require.Equal(t, MaxRefusalFields+1, fields, "the cap's fields and other")
}

func gather(t *testing.T, m *Ingest) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Refusals.Collectors()...)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	return mfs
}
