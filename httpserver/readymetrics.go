package httpserver

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// readyCollector exports readiness to Prometheus, checked at each scrape
// (bounded by readyTimeout like GET /readyz): kiln_ready is 1 when /readyz
// would answer 200, else 0, and kiln_ready_dependency_down names each
// dependency a check found unavailable (by role in the standalone). The
// alert rules in deployments/monitoring page on a store unreachable and on
// readiness flapping from them.
type readyCollector struct {
	ready ReadyFunc
	up    *prometheus.Desc
	down  *prometheus.Desc
}

func newReadyCollector(ready ReadyFunc) *readyCollector {
	return &readyCollector{
		ready: ready,
		up: prometheus.NewDesc("kiln_ready",
			"1 when every dependency of this process answers (GET /readyz is 200), else 0; checked at each scrape.", nil, nil),
		down: prometheus.NewDesc("kiln_ready_dependency_down",
			"1 for each dependency (nats, mongodb, redis, ...) a readiness check found unavailable, by role; absent when it answers.",
			[]string{"role", "dependency"}, nil),
	}
}

func (c *readyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.down
}

func (c *readyCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	err := c.ready(ctx)
	if err == nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
	var re *rolesError
	if !errors.As(err, &re) {
		for _, dep := range dependencies(err) {
			ch <- prometheus.MustNewConstMetric(c.down, prometheus.GaugeValue, 1, "", dep)
		}
		return
	}
	for _, role := range sortedKeys(re.roles) {
		for _, dep := range re.roles[role].Dependencies {
			ch <- prometheus.MustNewConstMetric(c.down, prometheus.GaugeValue, 1, role, dep)
		}
	}
}
